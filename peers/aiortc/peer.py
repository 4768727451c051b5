#!/usr/bin/env python3
"""A WebRTC peer built on aiortc (PyPI), speaking callwall's external-peer contract.

    python3 peers/aiortc/peer.py --offer    # the caller: creates the offer
    python3 peers/aiortc/peer.py --answer   # the callee: answers it

Options: `--relay udp|tcp|tls` forces the media through the run's TURN relay (ICE transport
policy "relay") over that transport: `tls` is TURN over TLS over TCP (`turns:`), the relay's
certificate pinned from CALLWALL_TURN_CA_FILE. `--turn udp|tcp|tls` adds a relay candidate
over that transport beside the host ones. Without either the peer uses host candidates only
(like callwall's webrtc `direct`), whether or not the run has a relay. `--no-report` writes
no report at all, so the call is judged from the network (the censor's view), as for a peer
that cannot report.

ICE (host candidates on CALLWALL_LOCAL_IP, plus one TURN relay candidate with --relay/--turn;
aiortc uses one TURN server), DTLS, then SCTP: the voice frames (docs/peers.md) go over an
unordered data channel with no retransmissions, so a lost frame stays lost as it would in RTP. SDP goes through the signal
server under CALLWALL_RENDEZVOUS (keys `offer` and `answer`; aiortc gathers all candidates
before it writes its description, so there is no trickle).
"""

import argparse
import asyncio
import functools
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import callwall_peer as cw  # noqa: E402

import aioice.ice  # noqa: E402
import aiortc  # noqa: E402
import aioice.turn  # noqa: E402
from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

# The TURN URL each --relay choice takes from CALLWALL_TURN_URLS.
RELAY_URL = {
    "udp": lambda u: u.startswith("turn:") and u.endswith("transport=udp"),
    "tcp": lambda u: u.startswith("turn:") and u.endswith("transport=tcp"),
    "tls": lambda u: u.startswith("turns:"),
}


def ice_servers(c, relay):
    """The TURN server aiortc gets (it uses one): the URL for `relay` (udp, tcp, tls), or none."""
    if not c.turn or not relay:
        return []
    urls = [u for u in c.turn["urls"] if RELAY_URL[relay](u)][:1]
    if not urls:
        raise cw.ContractError(f"CALLWALL_TURN_URLS has no URL for --relay {relay}")
    return [RTCIceServer(urls=urls, username=c.turn["username"], credential=c.turn["password"])]


def pin_turn(c):
    """Makes every socket of this peer (aioice's TURN client included) leave from
    CALLWALL_LOCAL_IP, so the censor attributes the relay traffic to this call, and makes
    aioice check the relay's TLS certificate against the
    pinned CALLWALL_TURN_CA_FILE (it would use the system's CAs and the IP as name)."""
    ctx = None
    if c.turn and c.turn.get("ca_file"):
        ctx = ssl.create_default_context(cafile=c.turn["ca_file"])
        # The certificate names CALLWALL_TURN_SERVER_NAME, aioice dials the IP: the pin (the
        # only CA trusted) is the check.
        ctx.check_hostname = False
    original = aioice.turn.create_turn_endpoint

    @functools.wraps(original)
    async def create(*args, ssl=None, **kw):
        if ssl is True:
            if ctx is None:
                raise cw.ContractError("turns: needs CALLWALL_TURN_CA_FILE to pin the relay")
            ssl = ctx
        return await original(*args, ssl=ssl, **kw)

    def from_local_ip(method):
        @functools.wraps(method)
        def bound(*args, **kw):
            kw.setdefault("local_addr", (c.local_ip, 0))
            return method(*args, **kw)

        return bound

    loop = asyncio.get_running_loop()
    loop.create_connection = from_local_ip(loop.create_connection)
    loop.create_datagram_endpoint = from_local_ip(loop.create_datagram_endpoint)
    aioice.turn.create_turn_endpoint = create


def describe_path(pc):
    """The nominated ICE pair, read from aioice's state (best effort: None if it moved)."""
    try:
        pair = next(iter(pc.sctp.transport.transport._connection._nominated.values()))
        lc, rc = pair.local_candidate, pair.remote_candidate
        return f"ice {lc.type} {lc.host}:{lc.port} -> {rc.type} {rc.host}:{rc.port}, dtls/sctp"
    except Exception:
        return None


async def run(c, report, relay, force):
    phase(c, "started (negative: before the call's start)")
    await c.wait_for_start()
    return await asyncio.wait_for(call(c, report, relay, force), c.connect_timeout + c.duration + c.drain + 5)


def phase(c, what):
    """One line on stderr per step of the setup, ms after the call's start (for diagnosis)."""
    print(f"{(cw.now_ns() - c.start_ns) / 1e6:8.0f} ms  {what}", file=sys.stderr, flush=True)


async def call(c, report, relay, force):
    # Host candidates only on the contract's own address (and never a public STUN server).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [c.local_ip]
    pin_turn(c)
    policy = RTCIceTransportPolicy.RELAY if force else RTCIceTransportPolicy.ALL
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(c, relay), iceTransportPolicy=policy))
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

    try:
        sig = await cw.connect_signal(c, c.connect_timeout)
    except cw.SignallingFailed as e:
        return cw.signalling_failed(report, e)
    deadline = asyncio.get_running_loop().time() + c.connect_timeout
    left = lambda: max(deadline - asyncio.get_running_loop().time(), 0.05)  # noqa: E731
    try:
        if c.role == "caller":
            wire(pc.createDataChannel("voice", ordered=False, maxRetransmits=0))
            await pc.setLocalDescription(await pc.createOffer())
            phase(c, "candidates gathered, offer written")
            await sig.put(c.key("offer"), json.dumps({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}))
            answer = json.loads(await sig.get(c.key("answer"), left()))
            phase(c, "answer read")
            await pc.setRemoteDescription(RTCSessionDescription(**answer))
        else:
            pc.on("datachannel", wire)
            offer = json.loads(await sig.get(c.key("offer"), left()))
            phase(c, "offer read")
            await pc.setRemoteDescription(RTCSessionDescription(**offer))
            await pc.setLocalDescription(await pc.createAnswer())
            phase(c, "candidates gathered, answer written")
            await sig.put(c.key("answer"), json.dumps({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}))
        await asyncio.wait_for(opened.wait(), left())
        phase(c, "data channel open")
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
    t = ap.add_mutually_exclusive_group()
    t.add_argument("--relay", choices=sorted(RELAY_URL), help="force the media through the TURN relay over this transport")
    t.add_argument("--turn", choices=sorted(RELAY_URL), help="add a TURN relay candidate over this transport")
    ap.add_argument("--no-report", action="store_true", help="write no report: the call is judged from the network")
    args = ap.parse_args()
    c = cw.contract_or_exit()
    relay = args.relay or args.turn
    if relay and not c.turn:
        print("bad contract: --relay/--turn given but the run has no relay (CALLWALL_TURN_URLS is not set; "
              "set relay = true in the scenario's peer table)", file=sys.stderr)
        sys.exit(cw.EXIT_BAD_CONTRACT)
    want = "caller" if args.offer else "callee" if args.answer else c.role
    if want != c.role:
        print(f"bad contract: --{'offer' if args.offer else 'answer'} given but CALLWALL_ROLE={c.role}", file=sys.stderr)
        sys.exit(cw.EXIT_BAD_CONTRACT)
    report = cw.NullReport() if args.no_report else cw.Report(c.report_path)
    report.hello(f"aiortc {aiortc.__version__}")
    try:
        code = asyncio.run(run(c, report, relay, bool(args.relay)))
    except cw.ContractError as e:
        print(f"bad contract: {e}", file=sys.stderr)
        code = cw.EXIT_BAD_CONTRACT
    except Exception as e:
        report.error(f"{type(e).__name__}: {e}")
        print(f"aiortc peer failed: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    report.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
