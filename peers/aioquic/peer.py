#!/usr/bin/env python3
"""A QUIC peer built on aioquic (PyPI), speaking callwall's external-peer contract.

    python3 peers/aioquic/peer.py --client   # the caller: dials the callee
    python3 peers/aioquic/peer.py --server   # the callee: listens on CALLWALL_LOCAL_IP:CALLWALL_MEDIA_PORT

Voice frames (docs/peers.md) travel as QUIC DATAGRAM frames (RFC 9221), unreliable, both
ways. The callee makes a fresh self-signed certificate for `callee.callwall.test` and puts
its PEM in the signal server under `{CALLWALL_RENDEZVOUS}/cert`; the caller pins exactly that
certificate, presents SNI `callee.callwall.test` and ALPN `callwall-voice`.
"""

import argparse
import asyncio
import datetime
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import callwall_peer as cw  # noqa: E402

import aioquic  # noqa: E402
from aioquic.asyncio import QuicConnectionProtocol, serve  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.connection import QuicConnection  # noqa: E402
from aioquic.quic.events import ConnectionTerminated, DatagramFrameReceived, HandshakeCompleted  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

SERVER_NAME = "callee.callwall.test"
ALPN = ["callwall-voice"]


def self_signed():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


class Voice(QuicConnectionProtocol):
    """Hands datagrams to the receiver and marks the handshake."""

    receiver = None
    connected = None  # an asyncio.Event shared by the callee's server
    current = None

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            Voice.current = self
            Voice.connected.set()
        elif isinstance(event, DatagramFrameReceived):
            Voice.receiver.on_frame(event.data)
        elif isinstance(event, ConnectionTerminated):
            print(f"connection closed: {event.reason_phrase or event.error_code}", file=sys.stderr)

    def send_frame(self, frame):
        self._quic.send_datagram_frame(frame)
        self.transmit()


def config(is_client):
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=ALPN,
        max_datagram_frame_size=65536,
        server_name=SERVER_NAME if is_client else None,
        idle_timeout=30.0,
    )


async def call(c, report):
    Voice.receiver = cw.Receiver(report)
    Voice.connected = asyncio.Event()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + c.connect_timeout
    left = lambda: max(deadline - loop.time(), 0.05)  # noqa: E731
    try:
        sig = await cw.connect_signal(c, c.connect_timeout)
    except cw.SignallingFailed as e:
        return cw.signalling_failed(report, e)
    server = None
    try:
        if c.role == "callee":
            cert, key = self_signed()
            cfg = config(False)
            cfg.certificate, cfg.private_key = cert, key
            server = await serve(c.local_ip, c.media_port, configuration=cfg, create_protocol=Voice)
            await sig.put(c.key("cert"), cert.public_bytes(serialization.Encoding.PEM).decode())
            await asyncio.wait_for(Voice.connected.wait(), left())
            path = f"quic {c.local_ip}:{c.media_port} <- {c.peer_ip}, datagrams"
        else:
            pem = await sig.get(c.key("cert"), left())
            cfg = config(True)
            cfg.load_verify_locations(cadata=pem.encode())
            family = socket.AF_INET6 if ":" in c.local_ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((c.local_ip, 0))
            _, proto = await loop.create_datagram_endpoint(
                lambda: Voice(QuicConnection(configuration=cfg)), sock=sock
            )
            proto.connect((c.peer_ip, c.media_port))
            await asyncio.wait_for(proto.wait_connected(), left())
            path = f"quic {c.local_ip}:{sock.getsockname()[1]} -> {c.peer_ip}:{c.media_port}, datagrams"
    except asyncio.TimeoutError as e:
        if server:
            server.close()
        return cw.not_connected(report, f"no QUIC handshake within {c.connect_timeout:.1f} s ({e})")
    finally:
        sig.close()
    report.connected(path)
    await cw.run_voice(c, report, lambda frame: Voice.current.send_frame(frame))
    Voice.current.close()
    if server:
        server.close()
    return cw.EXIT_OK


async def run(c, report):
    await c.wait_for_start()
    return await asyncio.wait_for(call(c, report), c.connect_timeout + c.duration + c.drain + 5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--client", action="store_true", help="be the caller (must match CALLWALL_ROLE)")
    g.add_argument("--server", action="store_true", help="be the callee (must match CALLWALL_ROLE)")
    args = ap.parse_args()
    c = cw.contract_or_exit()
    want = "caller" if args.client else "callee" if args.server else c.role
    if want != c.role:
        print(f"bad contract: role flag says {want} but CALLWALL_ROLE={c.role}", file=sys.stderr)
        sys.exit(cw.EXIT_BAD_CONTRACT)
    report = cw.Report(c.report_path)
    report.hello(f"aioquic {aioquic.__version__}")
    try:
        code = asyncio.run(run(c, report))
    except Exception as e:
        report.error(f"{type(e).__name__}: {e}")
        print(f"aioquic peer failed: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    report.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
