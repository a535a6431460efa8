"""``python -m media``: run one media worker from command-line arguments.

``telemed worker`` is the production entry point (it reads the environment
into settings); this one takes everything as arguments (into the same
:class:`~telemed.settings.Settings`; nothing is read from the environment),
for tests, benchmarks and debugging. SIGTERM and SIGINT finish every recording properly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from media.config import MediaSettings, default_worker_id
from media.worker import Worker
from telemed.settings import Settings, parse_language_map


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m media", description="Run a telemed media worker.")
    p.add_argument("--redis-url", required=True)
    p.add_argument("--recordings", type=Path, required=True, help="root of the chart folders")
    p.add_argument("--id", default="", help="worker id (default: host-pid-random)")
    p.add_argument("--address", action="append", default=[], help="host address to offer (repeatable; loopback allowed)")
    p.add_argument("--announce", default="", help="public address written into answers")
    p.add_argument("--max-legs", type=int, default=40)
    p.add_argument("--claim-idle", type=float, default=5.0)
    p.add_argument("--heartbeat", type=float, default=5.0)
    p.add_argument("--stt-models", default="", help="Vosk models by language: ko=/path,en=package (default: none)")
    p.add_argument("--stt-model", default="", help="one Vosk model folder or package, for the language its name says")
    p.add_argument("--no-stt-gate", action="store_true", help="feed the recogniser silence too (benchmarks)")
    p.add_argument("--stt-backlog", type=float, default=10.0, help="seconds of audio that may wait for the recogniser")
    p.add_argument("--captions-to-patient", action="store_true", help="send captions to both parties")
    p.add_argument("--uvloop", action="store_true", help="run on uvloop")
    p.add_argument("--log-level", default="INFO")
    return p


async def run(settings: MediaSettings) -> None:
    worker = Worker(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    print(f"worker {settings.worker_id} ready", flush=True)
    await stop.wait()
    await worker.stop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    base = Settings(
        redis_url=args.redis_url,
        recordings_dir=args.recordings,
        media_addresses=tuple(args.address),
        media_announced_address=args.announce,
        media_max_legs=args.max_legs,
        stt_models=parse_language_map(args.stt_models),
        stt_model=args.stt_model,
        captions_to_patient=args.captions_to_patient,
    )
    settings = MediaSettings(
        base,
        worker_id=args.id or default_worker_id(),
        claim_idle=args.claim_idle,
        heartbeat=args.heartbeat,
        stt_gate=not args.no_stt_gate,
        stt_backlog=args.stt_backlog,
    )
    if args.uvloop:
        import uvloop

        uvloop.run(run(settings))
    else:
        asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
