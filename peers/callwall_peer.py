"""The callwall external-peer contract for Python peers (docs/peers.md), in one file.

Standard library only. A peer imports it, reads its `Contract` from the environment, reaches
the signal server with `Signal`, runs the voice model with `run_voice`, and writes its
JSON-lines report with `Report`. The reference peers beside this file use it; a peer of your
own may copy it.
"""

import asyncio
import json
import os
import struct
import subprocess
import sys
import time

CONTRACT = 2  # the version of docs/peers.md this file speaks
EXIT_OK = 0
EXIT_BAD_CONTRACT = 2
EXIT_NOT_CONNECTED = 3
HEADER = struct.Struct(">IQ")  # seq u32, sent_unix_ns u64, big-endian; then zero padding


def now_ns():
    return time.time_ns()


class ContractError(Exception):
    pass


class Contract:
    """The CALLWALL_* variables, parsed. Raises ContractError naming the bad variable."""

    def __init__(self, env=None):
        env = os.environ if env is None else env

        def req(k):
            v = env.get(k)
            if v is None:
                raise ContractError(f"{k} is not set; run this peer through callwall or set it by hand (docs/peers.md)")
            return v

        def integer(k):
            v = req(k)
            try:
                return int(v)
            except ValueError:
                raise ContractError(f"{k}={v!r} is not an integer")

        if integer("CALLWALL_CONTRACT") != CONTRACT:
            raise ContractError(f"CALLWALL_CONTRACT={env['CALLWALL_CONTRACT']} is not {CONTRACT}, the version this peer speaks")
        self.role = req("CALLWALL_ROLE")
        if self.role not in ("caller", "callee"):
            raise ContractError(f"CALLWALL_ROLE={self.role!r} is neither caller nor callee")
        self.call_id = req("CALLWALL_CALL_ID")
        self.local_ip = req("CALLWALL_LOCAL_IP")
        self.peer_ip = req("CALLWALL_PEER_IP")
        self.media_port = integer("CALLWALL_MEDIA_PORT")
        host, _, port = req("CALLWALL_SIGNAL").rpartition(":")
        self.signal = (host.strip("[]"), int(port))
        self.rendezvous = req("CALLWALL_RENDEZVOUS")
        self.seed = integer("CALLWALL_SEED")
        self.start_ns = integer("CALLWALL_START_UNIX_NS")
        self.connect_timeout = integer("CALLWALL_CONNECT_TIMEOUT_MS") / 1e3
        self.duration = integer("CALLWALL_DURATION_MS") / 1e3
        self.drain = integer("CALLWALL_DRAIN_MS") / 1e3
        self.frame_interval = max(integer("CALLWALL_FRAME_INTERVAL_MS"), 1) / 1e3
        self.frame_bytes = max(integer("CALLWALL_FRAME_BYTES"), HEADER.size)
        self.log_dir = req("CALLWALL_LOG_DIR")
        self.report_path = req("CALLWALL_REPORT")
        urls = env.get("CALLWALL_TURN_URLS")
        self.turn = None
        if urls:
            self.turn = {
                "urls": [u for u in urls.split(",") if u],
                "username": req("CALLWALL_TURN_USERNAME"),
                "password": req("CALLWALL_TURN_PASSWORD"),
                "realm": req("CALLWALL_TURN_REALM"),
                "ca_file": env.get("CALLWALL_TURN_CA_FILE"),
                "server_name": req("CALLWALL_TURN_SERVER_NAME"),
            }

    def key(self, name):
        return f"{self.rendezvous}/{name}"

    async def wait_for_start(self):
        delay = (self.start_ns - now_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)


def contract_or_exit():
    try:
        return Contract()
    except (ContractError, ValueError) as e:
        print(f"bad contract: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_CONTRACT)


class Report:
    """Writes the JSON-lines report, one line per call, flushed as it goes."""

    def __init__(self, path):
        self.f = open(path, "w", buffering=1)

    def write(self, obj):
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def hello(self, impl):
        self.write({"event": "hello", "impl": impl})

    def connected(self, path=None):
        line = {"event": "connected", "t_ns": now_ns()}
        if path:
            line["path"] = path
        self.write(line)

    def error(self, message):
        self.write({"event": "error", "message": str(message)})

    def failed(self, stage, reason):
        """A stage of the call (`signalling` or `media`) failed: say so, with the reason."""
        self.write({"event": "failed", "stage": stage, "reason": str(reason)})

    def close(self):
        self.f.close()


class NullReport(Report):
    """A report that writes nothing (a peer that does not report: judged from the network)."""

    def __init__(self):
        self.f = None

    def write(self, obj):
        pass

    def close(self):
        pass


class Signal:
    """A client of callwall's signal server: one JSON object per line over TCP."""

    def __init__(self, addr, local_ip=None):
        self.addr = addr
        self.local_ip = local_ip
        self.reader = self.writer = None

    async def connect(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                local = (self.local_ip, 0) if self.local_ip else None
                self.reader, self.writer = await asyncio.wait_for(
                    asyncio.open_connection(self.addr[0], self.addr[1], local_addr=local, limit=1 << 20),
                    max(deadline - time.monotonic(), 0.1),
                )
                return self
            except (OSError, asyncio.TimeoutError):
                if time.monotonic() + 0.1 >= deadline:
                    raise
                await asyncio.sleep(0.1)

    async def _request(self, req, wait):
        self.writer.write((json.dumps(req) + "\n").encode())
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), wait + 5)
        if not line:
            raise ConnectionError("signal server closed the connection")
        return json.loads(line)

    async def put(self, key, value):
        resp = await self._request({"op": "put", "key": key, "value": value}, 0)
        if not resp.get("ok"):
            raise ConnectionError(f"signal put {key}: {resp.get('error')}")

    async def get(self, key, wait):
        resp = await self._request({"op": "get", "key": key, "wait_ms": int(wait * 1000)}, wait)
        if resp.get("ok"):
            return resp["value"]
        if resp.get("error") == "timeout":
            raise asyncio.TimeoutError(f"no {key} within {wait:.1f} s")
        raise ConnectionError(f"signal get {key}: {resp.get('error')}")

    def close(self):
        if self.writer:
            self.writer.close()


def encode_frame(seq, sent_ns, size):
    return HEADER.pack(seq, sent_ns) + bytes(size - HEADER.size)


class Receiver:
    """Records voice frames as they arrive, straight into the report."""

    def __init__(self, report):
        self.report = report
        self.malformed = 0

    def on_frame(self, data):
        recv = now_ns()
        if len(data) < HEADER.size:
            self.malformed += 1
            return
        seq, sent = HEADER.unpack_from(data)
        self.report.write({"seq": seq, "sent_ns": sent, "recv_ns": recv})


async def run_voice(c, report, send):
    """Sends a frame every interval for the call's duration (a steady clock: frames late from a
    stall are sent late, never skipped), then listens `drain` longer; writes "sent" and "done".
    `send(bytes)` must not block; frames arrive through a Receiver the caller wired up."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    start_ns = now_ns()
    seq = 0
    end = start + c.duration
    while True:
        due = start + seq * c.frame_interval
        if due >= end:
            break
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            send(encode_frame(seq, now_ns(), c.frame_bytes))
        except Exception as e:  # a dead path loses the frame, as for a real sender
            print(f"send failed: {e}", file=sys.stderr)
        seq += 1
    report.write({"event": "sent", "frames": seq, "start_ns": start_ns, "end_ns": now_ns()})
    await asyncio.sleep(c.drain)
    report.write({"event": "done", "t_ns": now_ns()})


def stop_process(proc, grace=5.0):
    """Stops a helper process the peer started (a browser, wireguard-go): SIGTERM, then SIGKILL
    after `grace` seconds; waits for it either way, so nothing is left running."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SignallingFailed(Exception):
    """The signal server could not be reached."""


async def connect_signal(c, timeout):
    """Connects to the signal server from the peer's own address, retrying until `timeout`;
    raises SignallingFailed when it cannot."""
    try:
        return await Signal(c.signal, c.local_ip).connect(timeout)
    except (OSError, asyncio.TimeoutError) as e:
        host, port = c.signal
        raise SignallingFailed(
            f"cannot reach the signal server {host}:{port} within {timeout:.1f} s ({type(e).__name__}: {e})"
        ) from e


def signalling_failed(report, why):
    """Reports a call whose signalling failed: a `failed` line, then as `not_connected`."""
    report.failed("signalling", why)
    return not_connected(report, why)


def not_connected(report, why):
    """Reports a call that never connected: zero frames sent, so it is judged blocked."""
    t = now_ns()
    print(f"not connected: {why}", file=sys.stderr)
    report.write({"event": "sent", "frames": 0, "start_ns": t, "end_ns": t})
    report.write({"event": "done", "t_ns": t})
    return EXIT_NOT_CONNECTED
