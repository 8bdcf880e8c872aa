"""Media relay speed: K concurrent 1:1 video calls through the server, forwarding vs transcoding.

One command runs everything. The server side runs in a subprocess of its own (this script with
``--serve``), so its CPU time is the relay's alone; the clients run in this process.

- **forward** (ours): ``consult.media.registry.CallRegistry``: encoded frames are forwarded,
  never decoded (``consult/media/forwarding.py``).
- **transcode** (the baseline, same run): plain aiortc, each incoming track decoded, fanned out
  with ``aiortc.contrib.media.MediaRelay`` and encoded again by the outgoing sender.
- **direct** (for latency): the two clients connected to each other, no server: the delay of
  the path without a relay, so *added latency* = through the relay - direct.

Each call has two aiortc clients (patient, doctor), each sending 640x480 VP8 at 30 fps and
Opus (20 ms frames). To keep the clients' CPU off the measurement they do not encode live: each
replays a clip encoded once at start by aiortc's own encoders (VP8: a 4 s loop starting with
a keyframe, restarted at that keyframe when a keyframe is asked for; Opus: a 1 s loop), as
``av.Packet``\\s that aiortc's sender packs into RTP. The clients' receivers do not decode
either (they count encoded frames). A received frame is recognised by its bytes (forwarding
keeps them), so its one-way latency is the time it arrives minus the time the other client
sent that frame (both clients share this process's clock).

Figures per K (1, 2, 4, 8): server CPU per call (share of one core), video frames and audio
packets delivered per second (and as a share of those sent), one-way latency p50 / p99 of
video and audio through the relay and directly, and the added latency. Transcoding costs a
core per 1-2 calls here, so it runs at K = 1 (and 2 in a full run).

Targets: forwarding CPU per call at most 1/8 of transcoding's; at least 95 % of frames
delivered at K = 8; added latency p50 under 40 ms for audio and video.

Usage: python bench/media_bench.py [--quick] [--ks 1,4,8] [--seconds 20]
The last line printed is one JSON object with the figures, the targets and "targets_met".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioice.ice
import av
from aiohttp import ClientSession, web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCSessionDescription,
)
from aiortc.codecs import get_encoder
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consult.media.forwarding import on_keyframe_request, receive_encoded  # noqa: E402
from consult.media.ice import IceConfig  # noqa: E402
from consult.media.registry import CallRegistry  # noqa: E402

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
FPS, AUDIO_PPS = 30, 50
PEERS = ("patient", "doctor")


def loopback_only() -> None:
    """Host candidates on 127.0.0.1 only (aioice leaves loopback out by default)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore


# -- the server process ------------------------------------------------------------------------


class Placeholder(MediaStreamTrack):
    """The transcoding room's outgoing track until the other participant's track exists."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: MediaStreamTrack | None = None
        self.ready = asyncio.Event()

    async def recv(self) -> Any:
        await self.ready.wait()
        assert self.source is not None
        return await self.source.recv()


class TranscodingRooms:
    """The baseline: aiortc as its examples use it, MediaRelay over decoded frames."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.rooms: dict[str, dict[str, tuple[RTCPeerConnection, dict[str, Any]]]] = {}

    async def offer(self, call: str, user: str, sdp: str) -> RTCSessionDescription:
        room = self.rooms.setdefault(call, {})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        outgoing = {kind: Placeholder(kind) for kind in ("audio", "video")}
        incoming: dict[str, Any] = {}
        room[user] = (pc, {"out": outgoing, "in": incoming})
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        for transceiver in pc.getTransceivers():
            incoming[transceiver.kind] = transceiver.receiver.track
            pc.addTrack(outgoing[transceiver.kind])
        for other, (_, tracks) in room.items():
            if other == user:
                continue
            for kind, track in incoming.items():
                tracks["out"][kind].source = self.relay.subscribe(track)
                tracks["out"][kind].ready.set()
            for kind, track in tracks["in"].items():
                outgoing[kind].source = self.relay.subscribe(track)
                outgoing[kind].ready.set()
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription

    async def close(self) -> None:
        for room in self.rooms.values():
            for pc, _ in room.values():
                await pc.close()
        self.rooms.clear()


async def serve(mode: str, port: int) -> None:
    loopback_only()
    registry = CallRegistry(IceConfig())
    transcoding = TranscodingRooms()

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        if mode == "forward":
            room = registry.open(body["call"], PEERS)
            answer = await room.offer(body["user"], body["sdp"], "offer")
        else:
            answer = await transcoding.offer(body["call"], body["user"], body["sdp"])
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    async def cpu(request: web.Request) -> web.Response:
        times = os.times()
        return web.json_response({"user": times.user, "system": times.system})

    async def end(request: web.Request) -> web.Response:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["MEDIA_BENCH_PROFILE"])
        await registry.close()
        await transcoding.close()
        return web.json_response({"resources": registry.resources()})

    profiler = None
    if os.environ.get("MEDIA_BENCH_PROFILE"):  # a cProfile of the server, for tuning
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    app = web.Application()
    app.router.add_post("/offer", offer)
    app.router.add_get("/cpu", cpu)
    app.router.add_post("/end", end)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# -- the clips the clients replay --------------------------------------------------------------


@dataclass
class Clip:
    kind: str
    frames: list[bytes]
    step: int  # RTP clock ticks per frame
    rate: int  # frames per second
    time_base: fractions.Fraction
    index: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: dict[bytes, int] = {}
        for i, data in enumerate(self.frames):
            seen[data] = -1 if data in seen else i  # a repeated frame cannot be timed
        self.index = {data: i for data, i in seen.items() if i >= 0}


def video_clip(seconds: int) -> Clip:
    """Camera-like content: a textured scene panning, with a moving bright square.

    (A flat gradient would make the transcoding baseline unrealistically cheap.)
    """
    import random

    from aiortc.codecs import depayload

    rng = random.Random(5)
    # A 4x4-block texture twice the frame's size, so the view can pan across it.
    tex_w, tex_h = 1280, 960
    block_rows = []
    for _ in range(tex_h // 4):
        row = bytes(b for _ in range(tex_w // 4) for b in [rng.randrange(40, 216)] * 4)
        block_rows.append(row)
    texture = [block_rows[y // 4] for y in range(tex_h)]
    encoder = get_encoder(VP8)
    frames = []
    for n in range(seconds * FPS):
        frame = av.VideoFrame(640, 480, "yuv420p")
        luma, *chroma = frame.planes
        stride = luma.line_size
        dx, dy = (3 * n) % 640, (2 * n) % 480
        sq_x, sq_y = (8 * n) % 560, (5 * n) % 400
        rows = []
        for y in range(480):
            row = bytearray(texture[y + dy][dx : dx + 640])
            if sq_y <= y < sq_y + 80:
                row[sq_x : sq_x + 80] = b"\xeb" * 80
            if y < 4:
                row[:] = bytes([n % 256]) * 640
            rows.append(bytes(row) + bytes(stride - 640))
        luma.update(b"".join(rows))
        for i, plane in enumerate(chroma):
            plane.update(bytes([(128 + (n if i else -n)) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = n * 3000, fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=n == 0)
        frames.append(b"".join(depayload(VP8, p) for p in payloads))
    return Clip("video", frames, 3000, FPS, fractions.Fraction(1, 90000))


def audio_clip(seconds: int) -> Clip:
    encoder = get_encoder(OPUS)
    frames: list[bytes] = []
    n = 0
    while len(frames) < seconds * AUDIO_PPS:
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        freq = 300 + 10 * n
        samples = b"".join(
            int(6000 * math.sin(2 * math.pi * freq * (n * 960 + i) / 48000)).to_bytes(
                2, "little", signed=True
            )
            * 2
            for i in range(960)
        )
        frame.planes[0].update(samples)
        frame.pts, frame.sample_rate = n * 960, 48000
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, _ = encoder.encode(frame)
        frames.extend(payloads)
        n += 1
    return Clip(
        "audio", frames[: seconds * AUDIO_PPS], 960, AUDIO_PPS, fractions.Fraction(1, 48000)
    )


class Replay(MediaStreamTrack):
    """Sends a clip's encoded frames at its rate, looping; notes when each was sent."""

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self.sent_at: dict[int, float] = {}
        self._n = 0
        self._position = 0
        self._start: float | None = None

    def restart(self) -> None:
        """A keyframe was asked for: go back to the clip's first (key) frame."""
        if self.kind == "video":
            self._position = 0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n / self.clip.rate - time.monotonic()))
        index = self._position
        packet = av.Packet(self.clip.frames[index])
        packet.pts, packet.time_base = self._n * self.clip.step, self.clip.time_base
        self._n += 1
        self._position = (index + 1) % len(self.clip.frames)
        self.sent_at[index] = time.monotonic()
        return packet


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Tally:
    video: int = 0
    audio: int = 0
    video_latency: list[float] = field(default_factory=list)
    audio_latency: list[float] = field(default_factory=list)
    counting: bool = False


class BenchClient:
    def __init__(self, clips: dict[str, Clip], tally: Tally) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.replays = {kind: Replay(clip) for kind, clip in clips.items()}
        self.clips = clips
        self.tally = tally
        self.peer: BenchClient | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.hooked: set[int] = set()

    def add_tracks(self) -> None:
        for kind in ("audio", "video"):
            sender = self.pc.addTrack(self.replays[kind])
            if kind == "video":
                on_keyframe_request(sender, self.replays[kind].restart)

    def hook_receivers(self) -> None:
        """After setRemoteDescription: count encoded frames, never decode."""
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if receiver.track is not None and id(receiver) not in self.hooked:
                self.hooked.add(id(receiver))
                receive_encoded(receiver)
                self.tasks.append(
                    asyncio.create_task(self._count(transceiver.kind, receiver.track))
                )

    async def _count(self, kind: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                packet = await track.recv()
                now = time.monotonic()
                if not self.tally.counting:
                    continue
                assert self.peer is not None
                index = self.clips[kind].index.get(bytes(packet))
                sent = None if index is None else self.peer.replays[kind].sent_at.get(index)
                if kind == "video":
                    self.tally.video += 1
                    if sent is not None and 0 <= now - sent < 5:
                        self.tally.video_latency.append(now - sent)
                else:
                    self.tally.audio += 1
                    if sent is not None and 0 <= now - sent < 1:
                        self.tally.audio_latency.append(now - sent)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def connect_via_server(
    http: ClientSession, url: str, call: str, user: str, client: BenchClient
) -> None:
    client.add_tracks()
    await client.pc.setLocalDescription(await client.pc.createOffer())
    async with http.post(
        f"{url}/offer", json={"call": call, "user": user, "sdp": client.pc.localDescription.sdp}
    ) as response:
        response.raise_for_status()
        answer = await response.json()
    await client.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    client.hook_receivers()


async def connect_direct(a: BenchClient, b: BenchClient) -> None:
    a.add_tracks()
    await a.pc.setLocalDescription(await a.pc.createOffer())
    await b.pc.setRemoteDescription(a.pc.localDescription)
    b.hook_receivers()
    b.add_tracks()  # takes the transceivers the offer made
    await b.pc.setLocalDescription(await b.pc.createAnswer())
    await a.pc.setRemoteDescription(b.pc.localDescription)
    a.hook_receivers()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def server_process(mode: str) -> Any:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        mode,
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the {mode} server did not start")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        await proc.wait()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def run(
    mode: str, k: int, clips: dict[str, Clip], warmup: float, seconds: float
) -> dict[str, Any]:
    """K calls through ``mode`` ("forward", "transcode" or "direct"); figures of one window."""
    tally = Tally()
    clients: list[BenchClient] = []
    figures: dict[str, Any] = {"mode": mode, "k": k}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(ClientSession())
        url = pid = None
        if mode != "direct":
            url, pid = await stack.enter_async_context(server_process(mode))
        for i in range(k):
            patient, doctor = BenchClient(clips, tally), BenchClient(clips, tally)
            patient.peer, doctor.peer = doctor, patient
            clients += [patient, doctor]
            if mode == "direct":
                await connect_direct(patient, doctor)
            else:
                assert url is not None
                await connect_via_server(http, url, f"call{i}", "patient", patient)
                await connect_via_server(http, url, f"call{i}", "doctor", doctor)
        await asyncio.sleep(warmup)
        cpu0 = await server_cpu(http, url)
        tally.counting = True
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        tally.counting = False
        elapsed = time.monotonic() - t0
        cpu1 = await server_cpu(http, url)
        if url is not None:
            async with http.post(f"{url}/end") as response:
                figures["server_left_open"] = (await response.json())["resources"]
        for client in clients:
            await client.close()
    sent_video, sent_audio = 2 * k * FPS * elapsed, 2 * k * AUDIO_PPS * elapsed
    figures.update(
        {
            "cpu_per_call": None
            if cpu0 is None or cpu1 is None
            else (sum(cpu1) - sum(cpu0)) / elapsed / k,
            "cpu_system_share": None
            if cpu0 is None or cpu1 is None
            else (cpu1[1] - cpu0[1]) / max(1e-9, sum(cpu1) - sum(cpu0)),
            "video_fps": tally.video / elapsed,
            "audio_pps": tally.audio / elapsed,
            "video_delivered": tally.video / sent_video,
            "audio_delivered": tally.audio / sent_audio,
            "video_p50_ms": pct(tally.video_latency, 0.5),
            "video_p99_ms": pct(tally.video_latency, 0.99),
            "audio_p50_ms": pct(tally.audio_latency, 0.5),
            "audio_p99_ms": pct(tally.audio_latency, 0.99),
            "timed_share": (len(tally.video_latency) / tally.video) if tally.video else 0.0,
        }
    )
    return figures


async def server_cpu(http: ClientSession, url: str | None) -> tuple[float, float] | None:
    """The server process's (user, system) CPU seconds so far, all its threads."""
    if url is None:
        return None
    async with http.get(f"{url}/cpu") as response:
        body = await response.json()
    return float(body["user"]), float(body["system"])


def fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    loopback_only()
    ks = [int(k) for k in args.ks.split(",")]
    transcode_ks = [int(k) for k in args.transcode_ks.split(",") if k]
    clips = {"video": video_clip(4), "audio": audio_clip(1)}
    sizes = sorted(len(f) for f in clips["video"].frames)
    print(
        f"clip: {len(sizes)} VP8 frames, median {sizes[len(sizes) // 2]} bytes "
        f"({sum(sizes) * 8 * FPS / len(sizes) / 1000:.0f} kbit/s), "
        f"keyframe {len(clips['video'].frames[0])} bytes"
    )
    rows: list[dict[str, Any]] = []
    for k in ks:
        rows.append(await run("direct", k, clips, args.warmup, args.seconds))
        rows.append(await run("forward", k, clips, args.warmup, args.seconds))
    for k in transcode_ks:
        rows.append(await run("transcode", k, clips, args.warmup, args.seconds))

    print(
        f"{'mode':<10} {'K':>2} {'CPU/call':>9} {'(sys)':>6} {'video f/s':>10} {'deliv':>6} "
        f"{'audio p/s':>10} {'deliv':>6} {'v p50':>7} {'v p99':>7} {'a p50':>7} {'a p99':>7}"
    )
    for r in rows:
        print(
            f"{r['mode']:<10} {r['k']:>2} {fmt(r['cpu_per_call'], '.1%'):>9} "
            f"{fmt(r['cpu_system_share'], '.0%'):>6} "
            f"{r['video_fps']:>10.1f} {r['video_delivered']:>6.1%} {r['audio_pps']:>10.1f} "
            f"{r['audio_delivered']:>6.1%} {fmt(r['video_p50_ms']):>7} {fmt(r['video_p99_ms']):>7} "
            f"{fmt(r['audio_p50_ms']):>7} {fmt(r['audio_p99_ms']):>7}"
        )

    def row(mode: str, k: int) -> dict[str, Any] | None:
        return next((r for r in rows if r["mode"] == mode and r["k"] == k), None)

    summary: dict[str, Any] = {"per_k": {}}
    for k in ks:
        fwd, direct = row("forward", k), row("direct", k)
        assert fwd is not None and direct is not None
        added = {
            kind: None
            if fwd[f"{kind}_p50_ms"] is None or direct[f"{kind}_p50_ms"] is None
            else fwd[f"{kind}_p50_ms"] - direct[f"{kind}_p50_ms"]
            for kind in ("video", "audio")
        }
        summary["per_k"][k] = {
            "forward_cpu_per_call": fwd["cpu_per_call"],
            "forward_cpu_system_share": fwd["cpu_system_share"],
            "video_fps": fwd["video_fps"],
            "audio_pps": fwd["audio_pps"],
            "video_delivered": fwd["video_delivered"],
            "audio_delivered": fwd["audio_delivered"],
            "video_p50_ms": fwd["video_p50_ms"],
            "video_p99_ms": fwd["video_p99_ms"],
            "audio_p50_ms": fwd["audio_p50_ms"],
            "audio_p99_ms": fwd["audio_p99_ms"],
            "direct_video_p50_ms": direct["video_p50_ms"],
            "direct_audio_p50_ms": direct["audio_p50_ms"],
            "added_video_p50_ms": added["video"],
            "added_audio_p50_ms": added["audio"],
            "server_left_open": fwd.get("server_left_open"),
        }
        print(
            f"K={k}: added one-way latency p50 video {fmt(added['video'])} ms, "
            f"audio {fmt(added['audio'])} ms"
        )
    ratios = []
    for k in transcode_ks:
        fwd, trans = row("forward", k), row("transcode", k)
        if fwd and trans and fwd["cpu_per_call"] and trans["cpu_per_call"]:
            ratios.append(fwd["cpu_per_call"] / trans["cpu_per_call"])
            per = summary["per_k"].setdefault(k, {})
            per["transcode_cpu_per_call"] = trans["cpu_per_call"]
            per["transcode_cpu_system_share"] = trans["cpu_system_share"]
            print(f"K={k}: forwarding CPU per call = {ratios[-1]:.3f} x transcoding's")
    k_max = max(ks)
    worst = summary["per_k"][k_max]
    added_all = [
        v
        for per in summary["per_k"].values()
        for v in (per.get("added_video_p50_ms"), per.get("added_audio_p50_ms"))
        if per.get("forward_cpu_per_call") is not None
    ]
    checks = {
        "cpu_ratio_at_most_1_8": bool(ratios) and max(ratios) <= 1 / 8,
        "frames_delivered_95pct_at_max_k": worst["video_delivered"] >= 0.95,
        "added_latency_p50_under_40ms": bool(added_all)
        and all(v is not None and v < 40 for v in added_all),
    }
    summary.update(
        {
            "benchmark": "media_bench",
            "max_k": k_max,
            "cpu_ratio_forward_to_transcode": ratios,
            "targets": {
                "cpu_ratio_max": 1 / 8,
                "frames_delivered_min_at_max_k": 0.95,
                "added_latency_p50_ms_max": 40,
            },
            "checks": checks,
            "targets_met": all(checks.values()),
        }
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 1 and 4, 4 s windows")
    parser.add_argument("--ks", default=None, help="numbers of concurrent calls (1,2,4,8)")
    parser.add_argument("--transcode-ks", default=None, help="K for the baseline (1,2)")
    parser.add_argument("--seconds", type=float, default=None, help="measuring window")
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--serve", choices=("forward", "transcode"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.serve, args.port))
        return
    quick = args.quick
    if args.ks is None:
        args.ks = "1,4" if quick else "1,2,4,8"
    if args.transcode_ks is None:
        args.transcode_ks = "1" if quick else "1,2"
    args.seconds = args.seconds or (4.0 if quick else 20.0)
    args.warmup = args.warmup or (2.0 if quick else 4.0)
    started = time.monotonic()
    summary = asyncio.run(bench(args))
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    summary["cpus"] = os.cpu_count()
    summary["median_latency_note"] = "added = through the relay - direct, p50 of each"
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
