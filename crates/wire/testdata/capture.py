#!/usr/bin/env python3
"""Regenerates the real-handshake captures in this directory. Loopback only.

Needs root (an AF_PACKET socket on `lo`), `openssl` (Debian) and `aioquic` (PyPI). Each capture
holds only the frames of its own port:

  dtls-openssl.pcapng      openssl s_client -dtls1_2 <-> s_server, pcapng little-endian
  tls-openssl.pcap         openssl s_client (SNI tls.example, ALPN h2,http/1.1), pcap usec
  quic-aioquic.pcap        aioquic client Initial(s) (SNI quic.example, ALPN h3), pcap nsec,
                           no server: only what the client sends

Run: sudo python3 capture.py   (from this directory)
"""
import asyncio
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time

ETH_P_ALL = 0x0003


class Capture:
    """Captures Ethernet frames on lo whose UDP/TCP source or destination port is `port`."""

    def __init__(self, port):
        self.port = port
        self.frames = []
        self.stop = False
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def wanted(self, f):
        if len(f) < 14 + 20:
            return False
        et = struct.unpack("!H", f[12:14])[0]
        if et == 0x0800:
            ihl = (f[14] & 0x0F) * 4
            proto = f[14 + 9]
            l4 = 14 + ihl
        elif et == 0x86DD:
            proto = f[14 + 6]
            l4 = 14 + 40
        else:
            return False
        if proto not in (6, 17) or len(f) < l4 + 4:
            return False
        sp, dp = struct.unpack("!HH", f[l4:l4 + 4])
        return self.port in (sp, dp)

    def run(self):
        while not self.stop:
            try:
                f = self.sock.recv(65535)
            except socket.timeout:
                continue
            if self.wanted(f):
                self.frames.append((time.time_ns(), f))

    def finish(self):
        time.sleep(0.3)
        self.stop = True
        self.thread.join()
        self.sock.close()
        return self.frames


def write_pcap(path, frames, nanos):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D if nanos else 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, f in frames:
            frac = ts % 1_000_000_000 if nanos else (ts % 1_000_000_000) // 1000
            out.write(struct.pack("<IIII", ts // 1_000_000_000, frac, len(f), len(f)))
            out.write(f)


def write_pcapng(path, frames):
    def block(typ, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", typ, n) + body + struct.pack("<I", n)

    with open(path, "wb") as out:
        out.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        # Interface: Ethernet, if_tsresol = 9 (nanoseconds).
        out.write(block(1, struct.pack("<HHI", 1, 0, 262144) + struct.pack("<HHB3x", 9, 1, 9) + b"\0" * 4))
        for ts, f in frames:
            out.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f))


def openssl_pair(tmp, port, server_args, client_args):
    key, crt = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=test"],
                       check=True, capture_output=True)
    srv = subprocess.Popen(["openssl", "s_server", "-quiet", "-key", key, "-cert", crt,
                            "-accept", f"127.0.0.1:{port}", *server_args],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    subprocess.run(["timeout", "5", "openssl", "s_client", "-connect", f"127.0.0.1:{port}", *client_args],
                   stdin=subprocess.DEVNULL, capture_output=True)
    srv.kill()
    srv.wait()


async def quic_client(port):
    from aioquic.asyncio import connect
    from aioquic.quic.configuration import QuicConfiguration

    cfg = QuicConfiguration(is_client=True, server_name="quic.example", alpn_protocols=["h3"])
    try:
        async with connect("127.0.0.1", port, configuration=cfg, wait_connected=True):
            pass
    except Exception:
        pass


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        cap = Capture(47443)
        openssl_pair(tmp, 47443, ["-dtls1_2"], ["-dtls1_2", "-servername", "dtls.example"])
        write_pcapng(os.path.join(here, "dtls-openssl.pcapng"), cap.finish())

        cap = Capture(47444)
        openssl_pair(tmp, 47444, [], ["-servername", "tls.example", "-alpn", "h2,http/1.1"])
        write_pcap(os.path.join(here, "tls-openssl.pcap"), cap.finish(), nanos=False)

    cap = Capture(47445)
    try:
        asyncio.run(asyncio.wait_for(quic_client(47445), 1.5))
    except Exception:
        pass
    write_pcap(os.path.join(here, "quic-aioquic.pcap"), cap.finish(), nanos=True)


if __name__ == "__main__":
    main()
