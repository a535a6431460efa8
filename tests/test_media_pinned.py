"""The worker's reliance on aioice's and aiortc's internals is checked against
the pinned versions' source (media/_pinned.py): media/ice.py's wrapper of
aioice's host-address gathering, installed only when a worker starts, and
media/tap.py's stand-in for aiortc's decoder queue."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from aiortc import rtcrtpreceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import _pinned, ice, tap

ROOT = Path(__file__).resolve().parent.parent


def test_aioice_is_the_version_the_wrapper_was_written_against() -> None:
    # An upgrade of aioice that changes these fails here: re-check media/ice.py
    # against the new code, then update ice.RELIES_ON.
    assert _pinned.changed(ice.relied_on(), ice.RELIES_ON) == []


def test_aiortc_is_the_version_the_tap_was_written_against() -> None:
    # Likewise for aiortc and media/tap.py (tap.RELIES_ON).
    assert _pinned.changed(tap.relied_on(), tap.RELIES_ON) == []
    tap.check()


def test_importing_the_media_code_changes_nothing_in_aioice() -> None:
    code = ("import aioice.ice; original = aioice.ice.get_host_addresses\n"
            "import media.worker, media.ice, tests.media_harness\n"
            "assert aioice.ice.get_host_addresses is original\n"
            "media.ice.install(); media.ice.install()\n"
            "assert aioice.ice.get_host_addresses is media.ice._get_host_addresses\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_changed_dependency_is_refused_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", ice._aioice_get_host_addresses)  # not installed
    monkeypatch.setitem(ice.RELIES_ON, "Connection.gather_candidates", "0" * 64)
    with pytest.raises(_pinned.DependencyChanged, match=r"aioice 0\.13\.0 changed .*Connection\.gather_candidates"):
        ice.install()
    assert aioice.ice.get_host_addresses is ice._aioice_get_host_addresses  # left as it was
    # Uninstalled, a choice of addresses is refused rather than silently ignored.
    with pytest.raises(RuntimeError, match="install"):
        with ice.host_addresses(["127.0.0.1"]):
            pass

    monkeypatch.setattr(tap, "_checked", False)
    monkeypatch.setitem(tap.RELIES_ON, "RTCRtpReceiver._handle_rtp_packet", "0" * 64)
    with pytest.raises(_pinned.DependencyChanged, match=r"aiortc .* changed .*_handle_rtp_packet"):
        tap.check()


def test_the_wrapper_answers_as_aioice_outside_a_choice() -> None:
    ice.install()
    for v4, v6 in ((True, False), (False, True), (True, True)):
        assert ice._get_host_addresses(v4, v6) == ice._aioice_get_host_addresses(v4, v6)
    with ice.host_addresses(["127.0.0.1", "::1", "10.1.2.3"]):
        assert ice._get_host_addresses(True, False) == ["127.0.0.1", "10.1.2.3"]
        assert ice._get_host_addresses(False, True) == ["::1"]
        with ice.host_addresses([]):  # an empty choice is aioice's own
            assert ice._get_host_addresses(True, False) == ice._aioice_get_host_addresses(True, False)
    assert ice._get_host_addresses(True, True) == ice._aioice_get_host_addresses(True, True)


@pytest.mark.parametrize("stand_in", ["original", "tap"])
async def test_aiortc_s_decoder_thread_runs_on_the_tap_and_stops_as_with_its_queue(stand_in: str) -> None:
    """aiortc's own decoder thread, given the tap where its queue was, waits
    (it never decodes a frame: they went to the sink) and ends on ``None``,
    telling the track it ended, as it does with the queue it replaces."""
    got: list[tap.EncodedFrame] = []
    ended: list[bool] = []
    no_receiver: Any = None  # only a keyframe request would use it
    q: Any = queue.Queue() if stand_in == "original" else tap.EncodedTap(no_receiver, "audio", got.append, lambda: ended.append(True))
    track: asyncio.Queue[object] = asyncio.Queue()
    thread = threading.Thread(target=rtcrtpreceiver.decoder_worker,
                              args=(asyncio.get_running_loop(), q, track, threading.Event()))
    thread.start()
    if stand_in == "tap":
        opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
        q.put((opus, JitterFrame(b"\xfc\xff\xfe", 960)))
    q.put(None)
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert await asyncio.wait_for(track.get(), 5) is None  # the track was told it ended
    if stand_in == "tap":
        assert [(f.codec, f.data, f.timestamp, f.keyframe) for f in got] == [("opus", b"\xfc\xff\xfe", 960, True)]
        assert ended == [True]
