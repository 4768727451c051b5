#!/usr/bin/env python3
"""A WebRTC peer in headless Chromium (Debian's `chromium`), speaking callwall's external-peer
contract.

    python3 peers/chromium/peer.py

Serves `page.html` on 127.0.0.1 inside the peer's own network namespace (so the page's HTTP
never crosses the censor), with a small API the page uses: `/config` (the call, from the
contract), `/put` and `/get` (bridged to callwall's signal server under CALLWALL_RENDEZVOUS),
`/report` (report lines, written to CALLWALL_REPORT) and `/finish` (the page's exit code). It
starts Chromium headless with a fake microphone (`--use-fake-device-for-media-stream
--use-fake-ui-for-media-stream`) and real host IPs in ICE candidates (no mDNS names), a
profile and HOME in CALLWALL_LOG_DIR, and exits with the page's code.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import callwall_peer as cw  # noqa: E402

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")
CHROMIUM = os.environ.get("CALLWALL_CHROMIUM", "chromium")


def signal_request(c, req, wait_s):
    """One request on a fresh connection to the signal server, from the peer's own address."""
    with socket.create_connection(c.signal, timeout=wait_s + 5, source_address=(c.local_ip, 0)) as s:
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("signal server closed the connection")
            buf += chunk
    return json.loads(buf)


def ice_servers(c):
    if not c.turn:
        return []
    urls = [u for u in c.turn["urls"] if u.startswith("turn:")]
    return [{"urls": urls, "username": c.turn["username"], "credential": c.turn["password"]}]


def to_ns_ints(line):
    """The page sends nanoseconds as decimal strings (JS numbers cannot hold them)."""
    for k in ("t_ns", "sent_ns", "recv_ns", "start_ns", "end_ns"):
        if isinstance(line.get(k), str):
            line[k] = int(line[k])
    return line


def make_handler(c, report, finished):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def reply(self, obj, ctype="application/json"):
            body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/":
                with open(PAGE, "rb") as f:
                    self.reply(f.read(), "text/html; charset=utf-8")
            elif self.path == "/config":
                self.reply({
                    "role": c.role,
                    "start_ms": c.start_ns / 1e6,
                    "connect_timeout_ms": c.connect_timeout * 1e3,
                    # How much later than start + connect timeout the page may still connect
                    # (after waiting for the other browser): callwall kills a peer SLACK after
                    # start + connect + duration + drain, so keep 2 s of that.
                    "slack_ms": 3000,
                    "duration_ms": c.duration * 1e3,
                    "drain_ms": c.drain * 1e3,
                    "interval_ms": c.frame_interval * 1e3,
                    "frame_bytes": c.frame_bytes,
                    "ice_servers": ice_servers(c),
                })
            else:
                self.send_error(404)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            try:
                if self.path == "/put":
                    self.reply(signal_request(c, {"op": "put", "key": c.key(body["key"]), "value": body["value"]}, 1))
                elif self.path == "/get":
                    wait = body["wait_ms"]
                    self.reply(signal_request(c, {"op": "get", "key": c.key(body["key"]), "wait_ms": wait}, wait / 1e3))
                elif self.path == "/report":
                    with lock:
                        for line in body:
                            report.write(to_ns_ints(line))
                    self.reply({"ok": True})
                elif self.path == "/log":
                    print(f"{body['ms']:8.0f} ms  {body['what']}", file=sys.stderr, flush=True)
                    self.reply({"ok": True})
                elif self.path == "/finish":
                    if body.get("why"):
                        print(f"page: {body['why']}", file=sys.stderr)
                    finished["code"] = int(body.get("code", 1))
                    self.reply({"ok": True})
                    finished["event"].set()
                else:
                    self.send_error(404)
            except (OSError, ValueError, KeyError) as e:
                self.reply({"ok": False, "error": f"{type(e).__name__}: {e}"})

    return Handler


def main():
    c = cw.contract_or_exit()
    report = cw.Report(c.report_path)
    finished = {"event": threading.Event(), "code": None}
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(c, report, finished))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    profile = os.path.join(c.log_dir, "chromium-profile")
    args = [
        CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-crash-reporter", "--disable-breakpad", "--disable-extensions",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows", "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}", url,
    ]
    # Chromium (its singleton socket directory) and its audio (libpulse's `pulse-XXXX`) put
    # directories in $TMPDIR, by default /tmp, where they would outlive a killed browser on the
    # host's disk. Inside a run /dev/shm is the sandbox's private tmpfs: use a short directory
    # there (Unix socket paths must stay under 108 bytes), else one in the log directory.
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else c.log_dir
    scratch = tempfile.mkdtemp(prefix="cw-chromium-", dir=base)
    env = dict(os.environ, HOME=c.log_dir, TMPDIR=scratch, PULSE_RUNTIME_PATH=scratch)
    # A SIGTERM (the harness ending the call) unwinds through the `finally` below, so the browser
    # is stopped and the scratch directory removed; a SIGKILL leaves it to the sandbox, whose
    # PID namespace ends the browser and whose private tmpfs holds the directory.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        done = run_browser(c, args, env, server, finished)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not done:
        report.error("the page did not finish")
        report.close()
        sys.exit(1)
    report.close()
    code = finished["code"]
    if code not in (cw.EXIT_OK, cw.EXIT_NOT_CONNECTED):
        print("the page failed; see chromium.log and the report's error line", file=sys.stderr)
    sys.exit(code)


def run_browser(c, args, env, server, finished):
    """Runs Chromium on the page until it reports or its budget ends; True if it reported."""
    log = open(os.path.join(c.log_dir, "chromium.log"), "w")
    print(f"{(cw.now_ns() - c.start_ns) / 1e6:8.0f} ms  starting chromium", file=sys.stderr, flush=True)
    browser = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        budget = max((c.start_ns - cw.now_ns()) / 1e9, 0) + c.connect_timeout + c.duration + c.drain + 10
        done = finished["event"].wait(budget)
        if not done:
            print(f"the page did not finish within {budget:.0f} s; see chromium.log", file=sys.stderr)
        return done
    finally:
        cw.stop_process(browser)
        server.shutdown()
        log.close()


if __name__ == "__main__":
    main()
