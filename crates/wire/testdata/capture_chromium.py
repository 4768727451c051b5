#!/usr/bin/env python3
"""Regenerates chromium-webrtc.pcap: headless Chromium, one page with three pairs of
RTCPeerConnections (data channels), inside a throwaway network namespace.

Needs root and Debian `chromium`. Creates the namespace `cwcap` with a veth pair (10.99.0.1/24,
10.99.0.2/24; both ends inside, so the host's namespace is never touched), captures UDP on its
`lo` with an AF_PACKET socket (traffic between two local addresses goes over lo), keeps the first
12 frames of each flow (STUN checks and the DTLS handshake), then deletes the namespace and the
browser profile. Chromium's DTLS ClientHello carries an X25519MLKEM768 key share and comes as two
handshake fragments in two datagrams; it permutes its extensions per connection.

Run: sudo python3 capture_chromium.py   (from this directory)
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

NS = "cwcap"
PAGE = """<!doctype html><html><body><script>
(async () => {
  for (let i = 0; i < 3; i++) {
    const a = new RTCPeerConnection(), b = new RTCPeerConnection();
    a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
    a.createDataChannel('x');
    await a.setLocalDescription(await a.createOffer());
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription(await b.createAnswer());
    await a.setRemoteDescription(b.localDescription);
  }
})();
</script></body></html>"""


def ns(*args):
    subprocess.run(["ip", "netns", "exec", NS, *args], check=True)


def capture(out, secs, ready):
    # setns into the namespace for this thread's socket: run a helper in the namespace instead.
    code = r'''
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("lo", 0)); s.settimeout(0.2)
print("ready", flush=True)
frames, per_flow = [], {}
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try: d, addr = s.recvfrom(65535)
    except socket.timeout: continue
    if addr[2] == socket.PACKET_OUTGOING or len(d) < 42 or d[12:14] != b"\x08\x00" or d[23] != 17:
        continue
    ports = sorted([d[26:30] + d[34:36], d[30:34] + d[36:38]])
    key = bytes(ports[0] + ports[1])
    per_flow[key] = per_flow.get(key, 0) + 1
    if per_flow[key] <= 12:
        frames.append((time.time(), d))
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for t, d in frames:
        f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(d), len(d)))
        f.write(d)
'''
    p = subprocess.Popen(["ip", "netns", "exec", NS, "python3", "-c", code, out, str(secs)],
                         stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    ready.set()
    p.wait()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    work = tempfile.mkdtemp(dir=os.path.join(here, "..", "..", "..", "target"))
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        ns("ip", "link", "set", "lo", "up")
        ns("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ns("ip", "addr", "add", "10.99.0.1/24", "dev", "v0")
        ns("ip", "addr", "add", "10.99.0.2/24", "dev", "v1")
        ns("ip", "link", "set", "v0", "up")
        ns("ip", "link", "set", "v1", "up")
        # Chromium gathers candidates only with a default route.
        ns("ip", "route", "add", "default", "dev", "v0")
        page = os.path.join(work, "page.html")
        with open(page, "w") as f:
            f.write(PAGE)
        ready = threading.Event()
        out = os.path.join(here, "chromium-webrtc.pcap")
        t = threading.Thread(target=capture, args=(out, 12, ready))
        t.start()
        ready.wait()
        subprocess.run(["ip", "netns", "exec", NS, "timeout", "10", "chromium", "--headless=new",
                        "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--user-data-dir=" + os.path.join(work, "profile"),
                        "--disable-features=WebRtcHideLocalIpsWithMdns",
                        "file://" + page], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t.join()
    finally:
        subprocess.run(["ip", "netns", "del", NS])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
