"""The node's part of the chart: chat copied into the folder while the visit
runs, and the whole chart written when it ends, by whichever node is there.

- **Chat, incrementally.** After an acknowledged message the visit is marked;
  a flush :data:`CHAT_DELAY` later reads every marked visit's new messages and
  appends what each folder lacks (by stream id, under the chart lock, so
  several nodes writing one chat write each line once), all in one thread job.
- **The end.** The end script puts the visit in ``tm:charts:pending``. Every
  node claims due visits there (a lease), writes ``visit.json`` and the rest
  of the chat, seals the folder (FHIR and manifest) and removes the visit from
  the set. A node killed half-way leaves the lease to run out; another node
  finishes the chart. The node that ended the visit is woken at once.
- **Retention.** With ``TELEMED_RETENTION`` set, one node at a time (a Redis
  lock) removes charts older than that, every hour, and audits each removal.

File work runs in threads (``asyncio.to_thread``): fsync must not stall the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from telemed import _scripts, call_quality, chart, guests, keys
from telemed.audit import AuditLog
from telemed.chart import BundleError, ChartIndex, participants, visit_folder
from telemed.chart.index import ChartList, index_unlisted_clinics
from telemed.chart.record import complete_chat
from telemed.chat import ChatLog, Message
from telemed.exceptions import NotFound
from telemed.media_protocol import keys as media_keys
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom

logger = logging.getLogger(__name__)

#: How long a node may take to write one chart before another may try.
LEASE = 60.0

#: Chat is copied to the folder this long after a message (every visit's
#: messages of that time at once, each visit's in one append).
CHAT_DELAY = 3.0

#: While a recording of an ended visit is still open, its chart is looked at
#: again this often, for at most this long.
RECHECK = 5.0
RECHECK_FOR = 300.0

#: Chat messages read from Redis per call.
PAGE = 1000

#: Visits whose last copied message a node remembers.
COPIED_KEPT = 10_000

#: How often retention runs (when set).
PURGE_EVERY = 3600.0


class ChartKeeper:
    def __init__(self, settings: Settings, redis: Any, room: WaitingRoom, chat: ChatLog, audit: AuditLog,
                 spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]) -> None:
        self.settings = settings
        self.spawn = spawn
        self.redis = redis
        self.room = room
        self.chat = chat
        self.audit = audit
        self._claim = redis.register_script(_scripts.CLAIM_CHARTS)
        self.index = ChartList(redis)
        self._woken: asyncio.Task[None] | None = None
        self._again = False
        self._chat_due: dict[str, str] = {}  # visit -> clinic
        #: visit -> the last stream id this node knows its folder has (so a flush
        #: reads only newer messages from Redis); the oldest entries go first
        self._copied: dict[str, str] = {}
        self._chat_flush: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    def where(self, clinic: str, visit_id: str) -> Path:
        return visit_folder(self.settings.recordings_dir, clinic, visit_id)

    # -- chat while the visit runs --------------------------------------------------------

    def chat_sent(self, message: Message, clinic: str) -> None:
        """A message was stored: copy it to the folder soon (batched)."""
        self._chat_due[message.visit_id] = clinic
        if self._chat_flush is None:
            self._chat_flush = asyncio.get_running_loop().call_later(CHAT_DELAY, self._start_flush)

    def _start_flush(self) -> None:
        self._chat_flush = None
        if self._flushing is None or self._flushing.done():
            self._flushing = self.spawn(self._flush_chat(), "chart chat")
        else:  # still writing the last batch: try again later
            self._chat_flush = asyncio.get_running_loop().call_later(CHAT_DELAY, self._start_flush)

    async def _flush_chat(self) -> None:
        """Copy the due visits' new messages: read from Redis here, then written
        in one thread job for all of them (a job per visit, ~50 a second under
        load, each handed the GIL back and forth with the loop), without fsync:
        each fsync took 10-40 ms on the development machine, more than the
        bench's 50 visits a second allow, and the copy made at the end of the
        visit (:meth:`finalise`) syncs the file, with every line before it."""
        due, self._chat_due = self._chat_due, {}
        batch: list[tuple[str, Path, list[dict[str, Any]], str]] = []
        for visit_id, clinic in due.items():
            try:
                stored = await self._chat_after(visit_id, self._copied.get(visit_id))
            except RedisError as exc:
                # Not lost: the stream has it, and the end of the visit copies it all.
                logger.warning("Chart(%s) chat not copied yet: %s", visit_id, type(exc).__name__)
                continue
            if stored:
                batch.append((visit_id, self.where(clinic, visit_id), [chart.chat_line(m.to_dict()) for m in stored],
                              stored[-1].id))
        if not batch:
            return

        def write() -> list[str | None]:
            failed: list[str | None] = []
            for _, where, messages, _ in batch:
                try:
                    with chart.locked(where):
                        # no fsync: Redis keeps the messages until the end's copy, which syncs
                        chart.append_chat(where, messages, durable=False)
                    failed.append(None)
                except OSError as exc:
                    failed.append(type(exc).__name__)
            return failed

        for (visit_id, _, _, last), error in zip(batch, await asyncio.to_thread(write), strict=True):
            if error is not None:
                logger.warning("Chart(%s) chat not copied yet: %s", visit_id, error)
            else:
                self._remember_copied(visit_id, last)

    def _remember_copied(self, visit_id: str, last: str) -> None:
        self._copied.pop(visit_id, None)
        self._copied[visit_id] = last
        if len(self._copied) > COPIED_KEPT:
            del self._copied[next(iter(self._copied))]

    async def copy_chat(self, clinic: str, visit_id: str) -> int:
        """Append the visit's stored messages the folder does not have yet."""
        where = self.where(clinic, visit_id)
        stored = await self._chat_after(visit_id, self._copied.get(visit_id))
        if not stored:
            return 0
        messages = [chart.chat_line(m.to_dict()) for m in stored]

        def write() -> int:
            with chart.locked(where):
                return chart.append_chat(where, messages)

        added = await asyncio.to_thread(write)
        self._remember_copied(visit_id, stored[-1].id)
        return added

    async def _chat_after(self, visit_id: str, after: str | None = None) -> list[Message]:
        """The visit's stored messages after stream id ``after`` (all with None)."""
        out: list[Message] = []
        while True:
            page = await self.chat.history(visit_id, after=after, limit=PAGE)
            out += page
            if len(page) < PAGE:
                return out
            after = page[-1].id

    # -- the end of a visit ---------------------------------------------------------------

    def wake(self) -> None:
        """A visit ended here: write its chart now rather than at the next round."""
        if self._woken is None or self._woken.done():
            self._woken = self.spawn(self._write_now(), "charts now")
        else:
            self._again = True  # the round under way may have missed it

    async def _write_now(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                await self.write_due()
            except RedisError as exc:
                logger.warning("charts: Redis unavailable (%s); the next round retries", type(exc).__name__)
                return

    async def run(self, interval: float) -> None:
        """Write the charts of ended visits, forever (one per node)."""
        last_purge = 0.0
        try:
            await index_unlisted_clinics(self.redis, self.settings.recordings_dir)
        except (OSError, RedisError) as exc:  # the list lacks old charts until the next start
            logger.warning("charts: old charts not indexed (%s)", type(exc).__name__)
        while True:
            try:
                await self.write_due()
                if self.settings.retention and time.time() - last_purge > PURGE_EVERY:
                    last_purge = time.time()
                    await self.purge_expired()
            except RedisError as exc:
                logger.warning("charts: Redis unavailable (%s); retrying", type(exc).__name__)
            except Exception:
                logger.exception("charts: round failed")
            # A plain sleep: on 3.11, wait_for and asyncio.timeout around an event
            # can swallow the cancellation that stops the node (seen: a node that
            # never finished shutting down). wake() starts a round of its own.
            await asyncio.sleep(interval)

    async def write_due(self, limit: int = 20) -> int:
        """Claim due charts and write them; returns how many were written."""
        done = 0
        while True:
            due = await self._claim(keys=[keys.CHARTS_PENDING], args=[repr(time.time()), LEASE, limit])
            for visit_id in due:
                try:
                    settled = await self.finalise(visit_id)
                except Exception:
                    logger.exception("Chart(%s) could not be written; retrying after the lease", visit_id)
                    await self._keep(visit_id)
                    continue
                if settled:
                    await self.redis.zrem(keys.CHARTS_PENDING, visit_id)
                else:  # a recording is still open: look again soon
                    await self.redis.zadd(keys.CHARTS_PENDING, {visit_id: time.time() + RECHECK})
                done += 1
            if len(due) < limit:
                return done

    async def _keep(self, visit_id: str) -> None:
        """A chart that cannot be written yet keeps what it is written from: the
        visit's keys in Redis live on while it is retried (else, after a week of
        failures, the chat would expire unwritten)."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key in (keys.visit(visit_id), keys.visit_history(visit_id), keys.chat(visit_id), keys.chat_ids(visit_id),
                        keys.call_quality(visit_id)):
                pipe.expire(key, keys.ENDED_VISIT_TTL)
            await pipe.execute()
        except RedisError:
            pass  # the next retry tries again

    async def finalise(self, visit_id: str) -> bool:
        """Write an ended visit's ``visit.json``, complete its chat, seal the
        folder. Returns False while a recording of it is still open (its
        worker reseals when it finishes; if the worker died, the next look
        marks the file interrupted)."""
        try:
            visit = await self.room.get(visit_id)
        except NotFound:
            logger.error("Chart(%s) cannot be written: the visit is gone from Redis", visit_id)
            return True
        history = await self.room.history(visit_id)
        self._copied.pop(visit_id, None)
        messages = [chart.chat_line(m.to_dict()) for m in await self._chat_after(visit_id)]
        record = chart.visit_record(visit, history, messages, await call_quality.summary(self.redis, visit_id))
        where = self.where(visit.clinic, visit_id)
        record["participants"] = participants.with_guests(record["participants"], visit,
                                                          await guests.read_all(self.redis, visit_id),
                                                          await asyncio.to_thread(ChartIndex(where).read))

        open_files = await asyncio.to_thread(chart.still_recording, where)
        alive = {w for w in open_files if await self.redis.exists(media_keys.worker(w))}
        if open_files.keys() - alive:
            index = ChartIndex(where)
            for role in {r for w, roles in open_files.items() if w not in alive for r in roles}:
                await asyncio.to_thread(index.close_stale, role, lambda w: w not in alive)

        def write() -> None:
            with chart.locked(where):
                chart.write_json(where / chart.VISIT, record)
                complete_chat(where, messages)
            try:
                chart.seal(where, self.settings.public_url, self.audit)
            except BundleError:
                pass  # logged; the manifest is written, and trying again would not help

        await asyncio.to_thread(write)
        await self.index.add(record)  # the chart browser's list; a failure retries the whole chart
        logger.info("Chart(%s) written", visit_id)
        gave_up = visit.ended_at is not None and time.time() - visit.ended_at > RECHECK_FOR
        return not alive or gave_up

    # -- retention -------------------------------------------------------------------------

    async def purge_expired(self) -> list[str]:
        """Remove charts older than the retention setting (one node at a time)."""
        if not self.settings.retention:
            return []
        if not await self.redis.set(keys.CHARTS_PURGE_LOCK, "1", nx=True, ex=int(PURGE_EVERY)):
            return []
        pending = set(await self.redis.zrange(keys.CHARTS_PENDING, 0, -1))
        removed = await chart.purge(self.settings.recordings_dir, self.settings.retention, self.audit, actor="system", skip=pending)
        if removed:  # purge names the visits only: forget them in every clinic's list
            root = self.settings.recordings_dir
            clinics = await asyncio.to_thread(lambda: [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")])
            for clinic in clinics:
                for visit_id in removed:
                    await self.index.remove(clinic, visit_id)
        return removed

