#!/usr/bin/env python3
"""A client of the Microsoft simulator protocol that talks the way the Azure IoT C SDK's TPM
simulator build does (azure-utpm-c, tpm_comm_emulator.c), so that sctpmd is tested against that
client without building the SDK. What it reproduces, byte for byte and write for write:

  - the command connection comes first: REMOTE_HANDSHAKE and the client version 1 in two
    writes, then the server version (which must be 1), the server's flags and an ACK of 0;
  - then a platform connection of its own: POWER_ON and NV_ON, one ACK each, and it is closed;
  - each TPM command in four writes (the code 8, the locality byte, the size, the command), with
    Nagle left on as the SDK leaves it, and the response read as size, bytes and ACK;
  - TPM2_Startup(CLEAR) first, where TPM_RC_INITIALIZE counts as success;
  - TPM2_HMAC with a password session on the device key at 0x81000100, the handle the SDK uses;
  - SESSION_END on the command connection at the end.

usage: utpm-client.py PORT KEY_HEX COUNT
Prints one line per phase; exits 1 with the reason on the first deviation.
"""
import hashlib
import hmac
import socket
import struct
import sys

REMOTE_HANDSHAKE, SEND_COMMAND, POWER_ON, NV_ON, SESSION_END = 15, 8, 1, 11, 20
TPM_RC_INITIALIZE = 0x100
DEVICE_KEY = 0x81000100
TPM_RS_PW = 0x40000009


def fail(msg):
    print("utpm-client: " + msg, file=sys.stderr)
    sys.exit(1)


def u32(v):
    return struct.pack(">I", v)


def read_exact(sock, n, what):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            fail("the connection closed while reading " + what)
        data += chunk
    return data


def read_u32(sock, what):
    return struct.unpack(">I", read_exact(sock, 4, what))[0]


def command(sock, body):
    """Sends one TPM command the SDK's way; returns (response code, response)."""
    sock.sendall(u32(SEND_COMMAND))
    sock.sendall(b"\0")
    sock.sendall(u32(len(body)))
    sock.sendall(body)
    size = read_u32(sock, "the response size")
    if size < 10 or size > 4096:
        fail("response size %d" % size)
    rsp = read_exact(sock, size, "the response")
    ack = read_u32(sock, "the ACK")
    if ack != 0:
        fail("ACK %d after a command" % ack)
    return struct.unpack(">I", rsp[6:10])[0], rsp


def hmac_command(data):
    """TPM2_HMAC(0x81000100, data, TPM_ALG_NULL) with an empty password, as the SDK builds it."""
    auth = u32(TPM_RS_PW) + struct.pack(">H", 0) + b"\x01" + struct.pack(">H", 0)
    params = struct.pack(">H", len(data)) + data + struct.pack(">H", 0x0010)
    body = u32(DEVICE_KEY) + u32(len(auth)) + auth + params
    return struct.pack(">HII", 0x8002, 10 + len(body), 0x155) + body


def main():
    if len(sys.argv) != 4:
        fail("usage: utpm-client.py PORT KEY_HEX COUNT")
    port, key, count = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])

    cmd = socket.create_connection(("127.0.0.1", port))
    cmd.sendall(u32(REMOTE_HANDSHAKE))
    cmd.sendall(u32(1))
    version = read_u32(cmd, "the server version")
    flags = read_u32(cmd, "the server flags")
    ack = read_u32(cmd, "the handshake ACK")
    if version != 1 or ack != 0:
        fail("handshake: server version %d, ACK %d (the SDK wants 1 and 0)" % (version, ack))
    print("handshake: server version 1, flags 0x%x" % flags)

    plat = socket.create_connection(("127.0.0.1", port + 1))
    for code, name in ((POWER_ON, "POWER_ON"), (NV_ON, "NV_ON")):
        plat.sendall(u32(code))
        ack = read_u32(plat, name + "'s ACK")
        if ack != 0:
            fail("%s answered %d" % (name, ack))
    plat.close()
    print("platform: POWER_ON and NV_ON acknowledged")

    rc, _ = command(cmd, struct.pack(">HIIH", 0x8001, 12, 0x144, 0))
    if rc not in (0, TPM_RC_INITIALIZE):
        fail("TPM2_Startup(CLEAR) returned 0x%x" % rc)
    print("startup: 0x%x (the SDK accepts it)" % rc)

    for i in range(count):
        data = b"sctpm sdk token %d" % i
        rc, rsp = command(cmd, hmac_command(data))
        if rc != 0:
            fail("TPM2_HMAC %d returned 0x%x" % (i, rc))
        # Response: header, parameterSize, TPM2B_DIGEST, then the authorization area.
        (size,) = struct.unpack(">H", rsp[14:16])
        got = rsp[16:16 + size]
        want = hmac.new(key, data, hashlib.sha256).digest()
        if got != want:
            fail("TPM2_HMAC %d gave %s, OpenSSL-equivalent %s" % (i, got.hex(), want.hex()))
    print("hmac: %d TPM2_HMAC on 0x%08x agree with HMAC-SHA256 of the key" % (count, DEVICE_KEY))

    cmd.sendall(u32(SESSION_END))
    if cmd.recv(1) != b"":
        fail("the server answered SESSION_END instead of closing")
    cmd.close()
    print("session end: closed by the server")


main()
