"""Time to media: from the doctor's admit to both people receiving video, and
to both receiving sound, on an impaired network.

    python -m bench.call_setup --profile good|3g|bad [--calls 10] [--impaired patient|both] [--warmup 1] [--no-recording]

Runs the impaired-network test bed (tests/browser/_impaired.py): a
``telemed dev`` node, a real coturn and the impairing UDP relay in front of
it, in a private network namespace when run as root, with relay-only ICE
(``TELEMED_ICE_POLICY=relay``), so every media packet of both pages and of
the media worker crosses the relay. ``--impaired patient`` (the default): the
patient's path (the call and the patient's chart leg) is impaired as
``--profile`` says (see tests/netem.py: good 10 ms each way; 3g 300 kbit/s,
150 ms, 1 % loss; bad 150 kbit/s, 300 ms ± 40 ms, 5 % loss), while the
doctor and the media worker are on the good profile (the relay tells them
apart by the TURN username of their requests); ``--impaired both``: the
doctor's path too (a 3g call is then 3G-like at both ends: twice the delay).

Per call, two Chromium pages (Debian's, headless, fake camera and
microphone) in contexts of their own: the patient checks in (device check,
consent — to recording too unless ``--no-recording``, so the chart legs run
as in a real visit — reason), the doctor opens the staff page; then the
admit button is clicked from inside the doctor's page, which notes the time
(``Date.now()``, one clock for both pages on one machine). A script in each
page reads getStats of its peer connections every 25 ms and notes when the
first audio packet arrived and when the first video frame was decoded.

- ``video`` = admit → the later of the two pages' first decoded video frame;
- ``audio`` = admit → the later of the two pages' first audio packet.

``--warmup`` calls run first and are not counted (Chromium's first start of
its media stack). Each call has its own clinic, doctor and patient. Prints a
line per call, and as its last line::

    call_setup: profile=good impaired=patient calls=10 p50_video_s=… p90_video_s=… p50_audio_s=… p90_audio_s=…

(percentiles by nearest rank). Goal: p50 ≤ 1.0 s on good, ≤ 2.5 s on 3g.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from telemed.tokens import Role, mint
from tests.browser._impaired import Impaired, impaired_node
from tests.browser.conftest import ARGS, CHROMIUM, DESKTOP, PC_SPY, WAIT_MS
from tests.browser.steps import check_in
from tests.netem import PROFILES

#: Notes (Date.now()) the first inbound audio packet and the first decoded video
#: frame on any of the page's receiving peer connections.
FIRST_MEDIA = """
window.__firstMedia = {audio: null, video: null, created: null, connected: null};
(() => {
  const Spied = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Spied {
    constructor(...args) {
      super(...args);
      const seen = window.__firstMedia;
      const created = Date.now();
      const receives = () => this.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly');
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState !== 'connected' || seen.connected !== null || !receives()) return;
        seen.created = created;  // the call's connection (not the chart leg's)
        seen.connected = Date.now();
      });
    }
  };
})();
(() => {
  const tick = async () => {
    const seen = window.__firstMedia;
    if (seen.audio !== null && seen.video !== null) return;
    const now = Date.now();
    for (const pc of window.__pcs || []) {
      if (pc.connectionState === 'closed') continue;
      if (!pc.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly')) continue;
      try {
        (await pc.getStats()).forEach((s) => {
          if (s.type !== 'inbound-rtp') return;
          if (s.kind === 'audio' && (s.packetsReceived || 0) > 0 && seen.audio === null) seen.audio = now;
          if (s.kind === 'video' && (s.framesDecoded || 0) > 0 && seen.video === null) seen.video = now;
        });
      } catch (e) { /* closed meanwhile */ }
    }
    setTimeout(tick, 25);
  };
  setTimeout(tick, 25);
})();
"""

#: The doctors' token ``sub``s start so; the relay's rules find their paths by it.
DOCTOR_SUB = "benchdoc-"

#: Click the admit button from inside the page, noting when.
ADMIT = "(button) => { window.__admitAt = Date.now(); button.click(); }"


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def context(browser: Browser, *, phone: bool = False) -> BrowserContext:
    options: dict[str, Any] = {"locale": "en-US"}
    if phone:
        options |= {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    else:
        options |= {"viewport": DESKTOP}
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(WAIT_MS)
    ctx.add_init_script(PC_SPY + FIRST_MEDIA)
    return ctx


def first_media(page: Page, timeout: float) -> dict[str, int]:
    """The page's first audio and video times (ms since the epoch), once it has both."""
    page.wait_for_function("() => window.__firstMedia.audio !== null && window.__firstMedia.video !== null",
                           timeout=timeout * 1000, polling=100)
    got: dict[str, int] = page.evaluate("() => window.__firstMedia")
    return got


def one_call(bed: Impaired, browser: Browser, n: int, *, recording: bool, timeout: float) -> tuple[float, float, str]:
    """One visit's call; (admit → both receive video, admit → both receive audio)
    in seconds, and when each page made its first peer connection and got it
    connected (ms after the admit), in words."""
    node = bed.node
    clinic = f"bench{os.getpid()}x{n}"
    name = f"Patient Number{n}"
    _, link = node.create_visit(clinic, name)
    patient_ctx, doctor_ctx = context(browser, phone=True), context(browser)
    try:
        patient, doctor = patient_ctx.new_page(), doctor_ctx.new_page()
        check_in(patient, link, "Call set-up benchmark", recording=recording)
        token = mint(node.secret, role=Role.DOCTOR, name=f"Dr. Bench{n}", clinic=clinic, ttl=3600, sub=f"{DOCTOR_SUB}{os.getpid()}-{n}")[0]
        doctor.goto(node.staff_link(token))
        button = doctor.get_by_role("button", name=f"Admit {name}")
        expect(button).to_be_enabled()
        button.evaluate(ADMIT)
        admitted = int(doctor.evaluate("() => window.__admitAt"))
        seen = [first_media(page, timeout) for page in (doctor, patient)]
        video = (max(s["video"] for s in seen) - admitted) / 1000
        audio = (max(s["audio"] for s in seen) - admitted) / 1000

        def ms(at: int | None) -> str:
            return "-" if at is None else str(at - admitted)

        steps = " ".join(f"{who}: pc +{ms(s['created'])} connected +{ms(s['connected'])} ms;"
                         for who, s in zip(("doctor", "patient"), seen, strict=True))
        return video, audio, steps
    finally:
        patient_ctx.close()
        doctor_ctx.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.call_setup", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=[name for name in PROFILES if name != "blocked"], default="good")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--impaired", choices=["patient", "both"], default="patient",
                   help="whose path gets the profile (the others' stay good)")
    p.add_argument("--warmup", type=int, default=1, help="calls made first and not counted")
    p.add_argument("--no-recording", action="store_true", help="the patient refuses recording: no chart legs")
    p.add_argument("--timeout", type=float, default=60.0, help="longest wait for a call's media, in seconds")
    p.add_argument("--chromium", default=str(CHROMIUM))
    args = p.parse_args(argv)
    if args.calls < 1:
        p.error("--calls must be at least 1")
    if not Path(args.chromium).is_file():
        p.error(f"{args.chromium} is missing: install Debian's Chromium (apt-get install -y chromium)")
    videos: list[float] = []
    audios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-call-setup-") as folder, \
            impaired_node(args.chromium, Path(folder), profile=args.profile, name="bench-call-setup") as bed, \
            sync_playwright() as pw:
        where = "a private network namespace" if bed.node.netns_pid is not None else "the host's network (not root)"
        if args.impaired == "patient":
            bed.match(f":{DOCTOR_SUB}", "good")
            bed.match(":worker-", "good")
        print(f"node {bed.node.url} in {where}; coturn behind the impairing relay, profile {args.profile} "
              f"for {'the patient' if args.impaired == 'patient' else 'everyone'}", flush=True)
        browser = pw.chromium.launch(executable_path=bed.node.chromium, args=ARGS, headless=True)
        try:
            for n in range(args.warmup + args.calls):
                started = time.monotonic()
                video, audio, steps = one_call(bed, browser, n, recording=not args.no_recording, timeout=args.timeout)
                counted = n >= args.warmup
                if counted:
                    videos.append(video)
                    audios.append(audio)
                print(f"call {n + 1 - args.warmup if counted else 'warm-up'}: video_s={video:.3f} audio_s={audio:.3f} "
                      f"({steps} whole call {time.monotonic() - started:.1f} s)", flush=True)
        finally:
            browser.close()
        totals = bed.totals()
    print(f"relay: up delivered {totals['up']['delivered']} lost {totals['up']['lost']} overflowed {totals['up']['overflowed']}; "
          f"down delivered {totals['down']['delivered']} lost {totals['down']['lost']} overflowed {totals['down']['overflowed']}")
    print(f"call_setup: profile={args.profile} impaired={args.impaired} calls={len(videos)} "
          f"p50_video_s={percentile(videos, 50):.2f} p90_video_s={percentile(videos, 90):.2f} "
          f"p50_audio_s={percentile(audios, 50):.2f} p90_audio_s={percentile(audios, 90):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
