#!/usr/bin/env python3
"""A WebRTC peer built on aiortc (PyPI), speaking callwall's external-peer contract.

    python3 peers/aiortc/peer.py --offer    # the caller: creates the offer
    python3 peers/aiortc/peer.py --answer   # the callee: answers it

ICE (host candidates on CALLWALL_LOCAL_IP, plus TURN over UDP/TCP when the run has a relay),
DTLS, then SCTP: the voice frames (docs/peers.md) go over an unordered data channel with no
retransmissions, so a lost frame stays lost as it would in RTP. SDP goes through the signal
server under CALLWALL_RENDEZVOUS (keys `offer` and `answer`; aiortc gathers all candidates
before it writes its description, so there is no trickle).
"""

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import callwall_peer as cw  # noqa: E402

import aioice.ice  # noqa: E402
import aiortc  # noqa: E402
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription  # noqa: E402


def ice_servers(c):
    """TURN over UDP and TCP from the contract; `turns:` is left out (aiortc cannot pin the
    relay's self-signed certificate)."""
    if not c.turn:
        return []
    urls = [u for u in c.turn["urls"] if u.startswith("turn:")]
    return [RTCIceServer(urls=urls, username=c.turn["username"], credential=c.turn["password"])]


def describe_path(pc):
    """The nominated ICE pair, read from aioice's state (best effort: None if it moved)."""
    try:
        pair = next(iter(pc.sctp.transport.transport._connection._nominated.values()))
        lc, rc = pair.local_candidate, pair.remote_candidate
        return f"ice {lc.type} {lc.host}:{lc.port} -> {rc.type} {rc.host}:{rc.port}, dtls/sctp"
    except Exception:
        return None


async def run(c, report):
    await c.wait_for_start()
    return await asyncio.wait_for(call(c, report), c.connect_timeout + c.duration + c.drain + 5)


async def call(c, report):
    # Host candidates only on the contract's own address (and never a public STUN server).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [c.local_ip]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(c)))
    opened = asyncio.Event()
    receiver = cw.Receiver(report)
    channel = {}

    def wire(dc):
        channel["dc"] = dc

        @dc.on("message")
        def on_message(msg):
            if isinstance(msg, (bytes, bytearray)):
                receiver.on_frame(bytes(msg))

        if dc.readyState == "open":
            opened.set()
        dc.on("open", opened.set)

    sig = await cw.Signal(c.signal, c.local_ip).connect(c.connect_timeout)
    deadline = asyncio.get_running_loop().time() + c.connect_timeout
    left = lambda: max(deadline - asyncio.get_running_loop().time(), 0.05)  # noqa: E731
    try:
        if c.role == "caller":
            wire(pc.createDataChannel("voice", ordered=False, maxRetransmits=0))
            await pc.setLocalDescription(await pc.createOffer())
            await sig.put(c.key("offer"), json.dumps({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}))
            answer = json.loads(await sig.get(c.key("answer"), left()))
            await pc.setRemoteDescription(RTCSessionDescription(**answer))
        else:
            pc.on("datachannel", wire)
            offer = json.loads(await sig.get(c.key("offer"), left()))
            await pc.setRemoteDescription(RTCSessionDescription(**offer))
            await pc.setLocalDescription(await pc.createAnswer())
            await sig.put(c.key("answer"), json.dumps({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}))
        await asyncio.wait_for(opened.wait(), left())
    except asyncio.TimeoutError as e:
        await pc.close()
        return cw.not_connected(report, f"no data channel within {c.connect_timeout:.1f} s ({e})")
    finally:
        sig.close()
    report.connected(describe_path(pc))
    dc = channel["dc"]
    await cw.run_voice(c, report, lambda frame: dc.send(frame) if dc.readyState == "open" else None)
    await pc.close()
    return cw.EXIT_OK


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--offer", action="store_true", help="be the caller (must match CALLWALL_ROLE)")
    g.add_argument("--answer", action="store_true", help="be the callee (must match CALLWALL_ROLE)")
    args = ap.parse_args()
    c = cw.contract_or_exit()
    want = "caller" if args.offer else "callee" if args.answer else c.role
    if want != c.role:
        print(f"bad contract: --{'offer' if args.offer else 'answer'} given but CALLWALL_ROLE={c.role}", file=sys.stderr)
        sys.exit(cw.EXIT_BAD_CONTRACT)
    report = cw.Report(c.report_path)
    report.hello(f"aiortc {aiortc.__version__}")
    try:
        code = asyncio.run(run(c, report))
    except Exception as e:
        report.error(f"{type(e).__name__}: {e}")
        print(f"aiortc peer failed: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    report.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
