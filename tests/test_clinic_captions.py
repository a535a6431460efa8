"""The media worker reads the clinic's "captions to the patient" setting (the
admin console's, in Redis) for each visit when its leg starts: no restart."""

from __future__ import annotations

import redis.asyncio as aioredis

from media.worker import Worker
from telemed import clinic_config
from telemed import keys as telemed_keys
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.conftest import WorkerFactory
from tests.media_harness import Browser, EmitLog, open_visit


async def caption_room(worker: Worker, log: EmitLog, room: WaitingRoom, sub: str) -> str:
    """Start a visit's patient leg on the worker, send one caption, return its room."""
    visit = await open_visit(room, patient=sub)
    browser = Browser()
    try:
        await browser.accept(await worker.handle_offer(
            {"job": f"j-{sub}", "visit": visit, "clinic": "c1", "role": "patient", "sub": sub,
             "sdp": await browser.offer(), "consent": "1"}
        ))
        leg = worker.legs[(visit, "patient")]
        await worker.stt_event(leg, "caption", {"final": True, "text": sub, "start": 0.0, "end": 1.0})
        got = await log.wait_for("caption", namespace="/media", data={"visit_id": visit, "role": "patient",
                                                                      "final": True, "text": sub, "start": 0.0, "end": 1.0})
        return str(got["room"])
    finally:
        await browser.close()


async def test_the_clinics_setting_is_read_for_each_visit(
    redis: aioredis.Redis, settings: Settings, start_worker: WorkerFactory
) -> None:
    worker = await start_worker()
    assert not worker.settings.captions_to_patient  # the process default: doctor only
    room = WaitingRoom(redis, settings)
    log = await EmitLog(settings.redis_url, telemed_keys.SOCKETIO_CHANNEL).start()
    try:
        first = await caption_room(worker, log, room, "p1")
        assert first.endswith(":captions")
        await clinic_config.set(redis, settings, "c1", {"captions_to_patient": True})
        second = await caption_room(worker, log, room, "p2")
        assert second == second.removesuffix(":captions") and second.startswith("media:")
        await clinic_config.set(redis, settings, "c1", {"captions_to_patient": False})
        assert (await caption_room(worker, log, room, "p3")).endswith(":captions")
    finally:
        await log.close()
