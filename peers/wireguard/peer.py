#!/usr/bin/env python3
"""A WireGuard peer: wireguard-go and wireguard-tools (Debian), with the voice sent through
the tunnel by this script. Speaks callwall's external-peer contract.

    python3 peers/wireguard/peer.py

Both sides make a fresh key pair (`wg genkey`) and swap public keys through the signal server
(`{CALLWALL_RENDEZVOUS}/caller-pubkey`, `…/callee-pubkey`). Each starts `wireguard-go` on a
TUN device of its own, listens on CALLWALL_MEDIA_PORT, and gives the tunnel an inner address
(caller 10.201.0.1, callee 10.201.0.2); the caller has the callee's CALLWALL_PEER_IP as
endpoint and starts the handshake, the callee learns the caller's endpoint from it. Once
`wg show … latest-handshakes` shows a handshake, voice frames (docs/peers.md) go as UDP
datagrams between the inner addresses, both ways.

Needs CAP_NET_ADMIN in its network namespace and /dev/net/tun. wireguard-go keeps its control
socket in /run/wireguard: run it where /run is private (callwall's sandbox gives it a tmpfs).
"""

import asyncio
import os
import socket
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import callwall_peer as cw  # noqa: E402

INNER = {"caller": "10.201.0.1", "callee": "10.201.0.2"}
VOICE_PORT = 50000


def pin_source(c):
    """wireguard-go listens on every address, so the kernel would pick the host's first address
    as the tunnel's source; a route to the other peer with `src CALLWALL_LOCAL_IP` makes the
    packets carry the call's own address (the censor attributes them to the call by it)."""
    words = sh("ip", "route", "get", c.peer_ip).split()
    route = ["ip", "route", "replace", c.peer_ip]
    for k in ("via", "dev"):
        if k in words:
            route += [k, words[words.index(k) + 1]]
    sh(*route, "src", c.local_ip)


def sh(*args, input=None):
    r = subprocess.run(args, input=input, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip()


def version():
    try:
        return sh("wireguard-go", "--version").splitlines()[0]
    except Exception:
        return "wireguard-go"


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receiver):
        self.receiver = receiver

    def datagram_received(self, data, addr):
        self.receiver.on_frame(data)


async def handshake_done(ifname, deadline, loop):
    """Polls `wg show` until the peer has a handshake or the deadline passes."""
    while loop.time() < deadline:
        out = sh("wg", "show", ifname, "latest-handshakes")
        if any(line.split()[-1] != "0" for line in out.splitlines() if line.split()):
            return True
        await asyncio.sleep(0.05)
    return False


async def call(c, report, ifname):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + c.connect_timeout
    left = lambda: max(deadline - loop.time(), 0.05)  # noqa: E731
    other = "callee" if c.role == "caller" else "caller"
    key_file = os.path.join(c.log_dir, "wg.key")
    priv = sh("wg", "genkey")
    with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(priv + "\n")
    pub = sh("wg", "pubkey", input=priv + "\n")
    try:
        sig = await cw.connect_signal(c, c.connect_timeout)
    except cw.SignallingFailed as e:
        return cw.signalling_failed(report, e)
    try:
        await sig.put(c.key(f"{c.role}-pubkey"), pub)
        peer_pub = await sig.get(c.key(f"{other}-pubkey"), left())
    except asyncio.TimeoutError as e:
        return cw.not_connected(report, f"no public key from the {other} ({e})")
    finally:
        sig.close()

    wg_log = open(os.path.join(c.log_dir, "wireguard-go.log"), "w")
    wg = subprocess.Popen(["wireguard-go", "-f", ifname], stdout=wg_log, stderr=subprocess.STDOUT)
    try:
        sock_path = f"/run/wireguard/{ifname}.sock"
        while not os.path.exists(sock_path):
            if wg.poll() is not None:
                raise RuntimeError(f"wireguard-go exited with {wg.returncode}; see wireguard-go.log")
            await asyncio.sleep(0.02)
        peer = ["peer", peer_pub, "allowed-ips", f"{INNER[other]}/32"]
        if c.role == "caller":
            peer += ["endpoint", f"{c.peer_ip}:{c.media_port}"]
        pin_source(c)
        sh("wg", "set", ifname, "private-key", key_file, "listen-port", str(c.media_port), *peer)
        sh("ip", "address", "add", f"{INNER[c.role]}/24", "dev", ifname)
        sh("ip", "link", "set", ifname, "up")

        receiver = cw.Receiver(report)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: Datagrams(receiver), local_addr=(INNER[c.role], VOICE_PORT)
        )
        dest = (INNER[other], VOICE_PORT)
        if c.role == "caller":
            transport.sendto(b"hi", dest)  # too short to be a frame: starts the handshake
        if not await handshake_done(ifname, deadline + (0.5 if c.role == "callee" else 0), loop):
            transport.close()
            return cw.not_connected(report, f"no WireGuard handshake within {c.connect_timeout:.1f} s")
        report.connected(f"wireguard {c.local_ip}:{c.media_port} <-> {c.peer_ip}, inner {INNER[c.role]} -> {INNER[other]}")
        await cw.run_voice(c, report, lambda frame: transport.sendto(frame, dest))
        transport.close()
        return cw.EXIT_OK
    finally:
        cw.stop_process(wg, grace=3)
        wg_log.close()


async def run(c, report, ifname):
    await c.wait_for_start()
    return await asyncio.wait_for(call(c, report, ifname), c.connect_timeout + c.duration + c.drain + 5)


def main():
    c = cw.contract_or_exit()
    # A name of its own (at most 15 bytes): wireguard-go's control socket is named after it.
    ifname = f"cw{c.role[-1]}{zlib.crc32(c.rendezvous.encode()):08x}"
    report = cw.Report(c.report_path)
    report.hello(version())
    try:
        code = asyncio.run(run(c, report, ifname))
    except Exception as e:
        report.error(f"{type(e).__name__}: {e}")
        print(f"wireguard peer failed: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    report.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
