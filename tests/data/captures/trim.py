#!/usr/bin/env python3
"""Cuts per-transport captures out of a censor pcap written by
`callwall run scenarios/baseline.toml --pcap --out DIR` (classic pcap, little-endian,
nanosecond timestamps, Ethernet).

    python3 tests/data/captures/trim.py DIR/baseline/censor.pcap tests/data/captures

Each output keeps the IPv4 packets between the given address pair (and, where given, that
server port), both directions, for the first SECONDS after the first such packet.
The address plan is the harness's: call i of the scenario has caller 10.1.0.(100+i) and
callee 10.2.0.(100+i); TURN-over-TCP allocations leave from the caller host's base address
10.1.0.2 to the relay 10.3.0.2.
"""
import struct
import sys

SECONDS = 2.0

# name: (address a, address b, server port or None)
CUTS = {
    "noise-udp-wg": ("10.1.0.101", "10.2.0.101", None),
    "quic": ("10.1.0.104", "10.2.0.104", None),
    "quic-443": ("10.1.0.105", "10.2.0.105", None),
    "quic-split": ("10.1.0.106", "10.2.0.106", None),
    "webrtc-direct": ("10.1.0.107", "10.2.0.107", None),
    "webrtc-turn-tcp": ("10.1.0.2", "10.3.0.2", 3478),
    "webrtc-turn-tls": ("10.1.0.2", "10.3.0.2", 443),
}


def ip(s):
    return bytes(int(x) for x in s.split("."))


def main(src, out_dir):
    data = open(src, "rb").read()
    header, pos = data[:24], 24
    assert struct.unpack("<I", data[:4])[0] == 0xA1B23C4D, "expects callwall's ns pcap"
    records = []
    while pos + 16 <= len(data):
        sec, ns, incl, orig = struct.unpack("<IIII", data[pos:pos + 16])
        records.append((sec * 1_000_000_000 + ns, data[pos:pos + 16 + incl]))
        pos += 16 + incl
    for name, (a, b, port) in CUTS.items():
        pair = {ip(a), ip(b)}
        kept, t0 = [], None
        for t, rec in records:
            f = rec[16:]
            if len(f) < 34 or f[12:14] != b"\x08\x00":
                continue
            ihl = (f[14] & 0x0F) * 4
            if {f[26:30], f[30:34]} != pair or f[26:30] == f[30:34]:
                continue
            if port is not None:
                l4 = f[14 + ihl:]
                if len(l4) < 4 or port not in struct.unpack(">HH", l4[:4]):
                    continue
            if t0 is None:
                t0 = t
            if t - t0 > SECONDS * 1e9:
                break
            kept.append(rec)
        with open(f"{out_dir}/{name}.pcap", "wb") as w:
            w.write(header)
            for rec in kept:
                w.write(rec)
        print(f"{name}: {len(kept)} packets")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
