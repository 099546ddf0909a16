#!/usr/bin/env python3
# client-fakehub.py PORT CERT KEY SCRIPT LOG: an HTTPS endpoint that answers IoT Hub's telemetry
# requests from a script, for the client's retry and refusal tests (sctpm-hub never throttles).
#
# SCRIPT holds one answer per line, used in order, one per request; when it runs out every
# request gets 204. A line is "STATUS [Name: value]..." with headers separated by " | ";
# "{date+N}" in a value becomes the HTTP-date N seconds from now. Error answers carry IoT Hub's
# JSON error body and iothub-errorcode.
#
# LOG gets one line per request: "<unix time> <method> <path> <status> <what>", where <what> is
# "single <message id>" or "batch <id>,<id>,...". The token is not checked (sctpm-hub does that).
import email.utils
import http.server
import json
import ssl
import sys
import threading
import time

port, cert, key, script_path, log_path = sys.argv[1:6]
with open(script_path) as f:
    script = [line.strip() for line in f if line.strip()]
lock = threading.Lock()
codes = {400: "ArgumentInvalid", 404: "IotHubNotFound", 413: "MessageTooLarge",
         429: "ThrottlingException", 500: "ServerError", 503: "ServiceUnavailable"}


def next_answer():
    with lock:
        line = script.pop(0) if script else "204"
    parts = [p.strip() for p in line.split("|")]
    status = int(parts[0])
    headers = []
    for h in parts[1:]:
        name, value = h.split(":", 1)
        value = value.strip()
        if value.startswith("{date+"):
            value = email.utils.formatdate(time.time() + int(value[6:-1]), usegmt=True)
        headers.append((name.strip(), value))
    return status, headers


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.headers.get("Content-Type", "").startswith("application/vnd.microsoft.iothub.json"):
            ids = [m["properties"]["iothub-messageid"] for m in json.loads(body)]
            what = "batch " + ",".join(ids)
        else:
            what = "single " + self.headers.get("iothub-messageid", "-")
        status, headers = next_answer()
        with lock, open(log_path, "a") as log:
            log.write("%.3f POST %s %d %s\n" % (time.time(), self.path.split("?")[0], status, what))
        out = b""
        if status >= 400:
            code = codes.get(status, "Error")
            out = json.dumps({"Message": "ErrorCode:%s;scripted %d" % (code, status),
                              "errorCode": status * 1000 + 1, "message": "scripted %d" % status}).encode()
            headers.append(("iothub-errorcode", code))
            headers.append(("Content-Type", "application/json; charset=utf-8"))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
