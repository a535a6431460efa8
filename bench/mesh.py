"""A call of three or four people (issue 13's mesh): each person's CPU and the
bitrates each page sends and receives, over a steady stretch of the call.

    python -m bench.mesh [--people 4] [--seconds 60]

Starts ``telemed dev`` (in a private network namespace when run as root, as
the browser tests do) and one headless Chromium (Debian's, fake camera and
microphone) per person, so that each person's CPU is that browser's: the
patient checks in, the doctor admits them, invites an interpreter (and, with
``--people 4``, a caregiver), who go through their device check and consent
and are let in. Once every page receives audio and video on each of its
``people - 1`` connections, the figures are read, then again ``--seconds``
later:

- ``cpu`` = the browser's processes' CPU time over the stretch
  (CDP ``SystemInfo.getProcessInfo``), in % of one core;
- ``sent`` / ``recv`` = the page's outbound / inbound RTP bytes of its call
  connections (getStats ``outbound-rtp`` / ``inbound-rtp``) over the stretch,
  in kbit/s (the chart leg is off: the patient does not agree to recording).

Prints a line per person, and as its last line::

    mesh: people=4 seconds=60 doctor cpu=…% sent=… recv=… kbit/s; patient …; interpreter …; caregiver …

Each page caps its video per connection at 1.7 Mbit/s / (people - 1)
(web/mesh.js), so ``sent`` should stay under about 2 Mbit/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Browser, CDPSession, Page, sync_playwright

from telemed.tokens import Role
from tests.browser._impaired import _Folders
from tests.browser.conftest import ARGS, CHROMIUM, DESKTOP, PC_SPY, WAIT_MS, dev_node
from tests.browser.steps import admit, check_in, guest_enters, invite_guest, let_in, mesh_flows

#: Outbound and inbound RTP bytes of the page's call connections (not the chart leg's).
RTP_BYTES = """async () => {
  const out = {sent: 0, recv: 0};
  for (const pc of (window.__pcs || [])) {
    if (pc.connectionState !== 'connected') continue;
    if (!pc.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly')) continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp') out.sent += s.bytesSent || 0;
      if (s.type === 'inbound-rtp') out.recv += s.bytesReceived || 0;
    });
  }
  return out;
}"""


def cpu_seconds(session: CDPSession) -> float:
    """CPU time so far of every process of one browser."""
    info: dict[str, Any] = session.send("SystemInfo.getProcessInfo")
    return float(sum(p.get("cpuTime", 0.0) for p in info["processInfo"]))


def person(browser: Browser) -> Page:
    options: dict[str, Any] = {"locale": "en-US", "viewport": DESKTOP}
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(WAIT_MS)
    ctx.add_init_script(PC_SPY)
    return ctx.new_page()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mesh", description=__doc__.split("\n\n")[0])
    p.add_argument("--people", type=int, choices=[3, 4], default=4)
    p.add_argument("--seconds", type=float, default=60.0, help="length of the measured stretch")
    p.add_argument("--chromium", default=str(CHROMIUM))
    args = p.parse_args(argv)
    if not Path(args.chromium).is_file():
        p.error(f"{args.chromium} is missing: install Debian's Chromium (apt-get install -y chromium)")
    names = ["doctor", "patient", "interpreter", "caregiver"][: args.people]
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as folder, \
            dev_node(args.chromium, cast(pytest.TempPathFactory, _Folders(Path(folder))), name="bench-mesh") as node, sync_playwright() as pw:
        browsers = {who: pw.chromium.launch(executable_path=node.chromium, args=ARGS, headless=True) for who in names}
        try:
            sessions = {who: b.new_browser_cdp_session() for who, b in browsers.items()}
            pages = {who: person(b) for who, b in browsers.items()}
            clinic = f"benchmesh{int(time.time())}"
            _, link = node.create_visit(clinic, "Rosa Díaz")
            check_in(pages["patient"], link, "Mesh benchmark", recording=False)
            pages["doctor"].goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
            admit(pages["doctor"], "Rosa Díaz")
            guests = [("interpreter", "Marta Ruiz", None), ("caregiver", "Luis Díaz", "caregiver")][: args.people - 2]
            for who, name, kind in guests:
                guest_link = invite_guest(pages["doctor"], name, language=None if kind else "es", kind=kind)
                guest_enters(pages[who], guest_link)
                let_in(pages["doctor"], pages[who], name)
            for who, page in pages.items():
                mesh_flows(page, who, args.people - 1, timeout=120)
            start = {who: (cpu_seconds(sessions[who]), page.evaluate(RTP_BYTES), time.monotonic()) for who, page in pages.items()}
            time.sleep(args.seconds)
            figures = []
            for who, page in pages.items():
                cpu0, bytes0, t0 = start[who]
                cpu1, bytes1, t1 = cpu_seconds(sessions[who]), page.evaluate(RTP_BYTES), time.monotonic()
                span = t1 - t0
                cpu = 100 * (cpu1 - cpu0) / span
                sent = 8 * (bytes1["sent"] - bytes0["sent"]) / span / 1000
                recv = 8 * (bytes1["recv"] - bytes0["recv"]) / span / 1000
                print(f"{who}: cpu {cpu:.0f} % of a core, sent {sent:.0f} kbit/s, received {recv:.0f} kbit/s", flush=True)
                figures.append(f"{who} cpu={cpu:.0f}% sent={sent:.0f} recv={recv:.0f}")
        finally:
            for b in browsers.values():
                b.close()
    print(f"mesh: people={args.people} seconds={args.seconds:.0f} " + "; ".join(figures) + " (kbit/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
