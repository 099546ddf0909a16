#!/usr/bin/env python3
"""A man in the middle of the TPM, for shim-srk.sh: relays the swtpm protocol (raw TPM
commands) from a Unix socket to an upstream one, and does to the SRK's TPM2_ReadPublic what an
interposer on the TPM's bus, or a process answering on the emulator's socket first, could do.

    tpm-mitm.py MODE LISTEN_PATH UPSTREAM_PATH LOG

MODE:
  pass      relays every command unchanged;
  redirect  every TPM2_ReadPublic of the SRK (0x81000001) reads REDIRECT_TO instead (the RSA
            EK: a genuine TPM key that is not the SRK), so that the public area, its Name and
            the session's HMAC are all the TPM's own, only for another key;
  tamper    in every response to a TPM2_ReadPublic of the SRK that carries a session (the
            audited read), one byte of the public key is changed.

Every command code is appended to LOG, one per line in hex, after it is relayed, so that the
test can tell which commands reached the TPM. The control channel (LISTEN_PATH.ctrl) is relayed
as bytes. Prints "ready" once both sockets listen.
"""
import os
import socket
import struct
import sys
import threading

CC_READ_PUBLIC = 0x173
SRK = 0x81000001
REDIRECT_TO = 0x81010001
TAG_SESSIONS = 0x8002

mode, listen_path, upstream_path, log_path = sys.argv[1:5]
log_lock = threading.Lock()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_message(sock):
    """One TPM command or response: a 10-byte header whose size field covers the whole."""
    head = recv_exact(sock, 10)
    if head is None:
        return None
    size = struct.unpack(">I", head[2:6])[0]
    if size < 10 or size > 1 << 16:
        return None
    rest = recv_exact(sock, size - 10)
    return None if rest is None else head + rest


def serve_data(client):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(upstream_path)
    try:
        while True:
            cmd = recv_message(client)
            if cmd is None:
                return
            tag, _, cc = struct.unpack(">HII", cmd[:10])
            srk_read = cc == CC_READ_PUBLIC and struct.unpack(">I", cmd[10:14])[0] == SRK
            if srk_read and mode == "redirect":
                cmd = cmd[:10] + struct.pack(">I", REDIRECT_TO) + cmd[14:]
            upstream.sendall(cmd)
            rsp = recv_message(upstream)
            if rsp is None:
                return
            rc = struct.unpack(">I", rsp[6:10])[0]
            if srk_read and mode == "tamper" and tag == TAG_SESSIONS and rc == 0:
                # parameterSize (4), TPM2B_PUBLIC size (2), type, nameAlg (2 each), attributes
                # (4), then the rest of the public area: the last byte of the key is well inside.
                pub_size = struct.unpack(">H", rsp[14:16])[0]
                i = 16 + pub_size - 1
                rsp = rsp[:i] + bytes([rsp[i] ^ 0x01]) + rsp[i + 1 :]
            client.sendall(rsp)
            with log_lock, open(log_path, "a") as log:
                log.write("%x\n" % cc)
    finally:
        upstream.close()
        client.close()


def pipe(src, dst):
    try:
        while True:
            data = src.recv(4096)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_ctrl(client):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    upstream.connect(upstream_path + ".ctrl")
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    pipe(client, upstream)


def listen(path, handler):
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)

    def loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    return threading.Thread(target=loop, daemon=True)


if mode not in ("pass", "redirect", "tamper"):
    sys.exit("tpm-mitm.py: unknown mode %r (pass, redirect or tamper)" % mode)
threads = [listen(listen_path, serve_data), listen(listen_path + ".ctrl", serve_ctrl)]
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
