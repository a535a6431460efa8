"""A Redis Sentinel group as child processes, for the tests and ``bench.failover``:
a primary, its replicas and the sentinels that watch them, each on a loopback
port.

Sentinel is ``redis-server`` in sentinel mode (``redis-server <conf> --sentinel``,
the same binary :func:`telemed.redis_server.find_redis_server` finds), so no
other package is needed. Like :class:`~telemed.redis_server.RedisServer`, every
process runs in its own session and dies with its parent (``PR_SET_PDEATHSIG``),
so a killed test run or benchmark leaves none behind.

Production runs Sentinel as docs/operations.md ("Redis Sentinel") describes;
nothing here is used by a node or a worker.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from telemed.exceptions import ConfigError
from telemed.redis_server import RedisServer, _die_with_parent, _tail, find_redis_server, free_port

logger = logging.getLogger(__name__)


#: Options of every server of the group: a replica that (re)connects is sent the
#: data at once, not after Redis's default 5 s wait for more replicas to share
#: the transfer (writes wait for a replica meanwhile; docs/operations.md).
SERVER_ARGS = ("--repl-diskless-sync-delay", "0")


class SentinelProcess:
    """One ``redis-server --sentinel`` watching ``master`` at ``master_port``.

    :param down_after_ms: how long the primary must be unreachable before this
        sentinel thinks it down (Sentinel's ``down-after-milliseconds``).
    :param failover_timeout_ms: Sentinel's ``failover-timeout``.
    """

    def __init__(
        self,
        directory: Path,
        master_port: int,
        *,
        master: str = "telemed",
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.directory = Path(directory)
        self.port = free_port()
        self.master = master
        self.master_port = master_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> SentinelProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"
        # Sentinel rewrites its file (what it learned: replicas, other sentinels, epochs).
        conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.directory}\n"
            "logfile sentinel.log\n"
            f"sentinel monitor {self.master} 127.0.0.1 {self.master_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.master} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {self.master} 1\n"
        )
        self.process = subprocess.Popen(
            [find_redis_server(), str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    words = _tail(self.directory / "sentinel.log").decode(errors="replace").strip().splitlines()
                    self.stop()
                    raise ConfigError(f"redis sentinel exited at start: {words[-1] if words else 'no log'}")
                try:
                    if client.ping():
                        break
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise ConfigError(f"redis sentinel did not answer on port {self.port} within {timeout:.0f}s")
                time.sleep(0.05)
        finally:
            client.close()
        logger.info("SentinelProcess(%s) ready", self.port)
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


class SentinelGroup:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority).

    :meth:`start` returns once every replica is in sync and every sentinel
    knows the replicas and the other sentinels, so a failover can happen.
    """

    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 1,
        sentinels: int = 3,
        master: str = "telemed",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        appendfsync: str = "everysec",
    ) -> None:
        self.directory = Path(directory)
        self.master = master
        self.appendfsync = appendfsync
        primary = RedisServer(self.directory / "redis0", appendfsync=appendfsync, args=SERVER_ARGS)
        self.servers = [primary] + [
            RedisServer(
                self.directory / f"redis{i}",
                appendfsync=appendfsync,
                args=(*SERVER_ARGS, "--replicaof", "127.0.0.1", str(primary.port)),
            )
            for i in range(1, replicas + 1)
        ]
        self.sentinels = [
            SentinelProcess(
                self.directory / f"sentinel{i}",
                primary.port,
                master=master,
                quorum=sentinels // 2 + 1,
                down_after_ms=down_after_ms,
                failover_timeout_ms=failover_timeout_ms,
            )
            for i in range(sentinels)
        ]

    @property
    def addresses(self) -> str:
        """The sentinels as ``REDIS_SENTINELS`` takes them."""
        return ",".join(s.address for s in self.sentinels)

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def rejoin(self, port: int, master_port: int) -> RedisServer:
        """Start the stopped server on ``port`` again as a replica of ``master_port``
        (a replaced primary coming back; Sentinel alone would convert it only
        after it has reported itself a primary for a while)."""
        server = self.server(port)
        server.args = (*SERVER_ARGS, "--replicaof", "127.0.0.1", str(master_port))
        return server.start()

    def start(self, timeout: float = 30.0) -> SentinelGroup:
        try:
            for server in self.servers:
                server.start()
            self._wait_replicas_in_sync(self.servers[0].port, len(self.servers) - 1, timeout)
            for sentinel in self.sentinels:
                sentinel.start()
            self._wait_sentinels_agree(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_replicas_in_sync(self, port: int, replicas: int, timeout: float) -> None:
        """Until ``replicas`` replicas confirm a write at once (``WAIT``): right
        after its first sync, a replica's first confirmation can take up to its
        one-second periodic acknowledgement."""
        deadline = time.monotonic() + timeout
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as client:
            while True:
                client.incr("telemed-sentinel-group:sync")
                if int(client.execute_command("WAIT", replicas, 50)) >= replicas:
                    client.delete("telemed-sentinel-group:sync")
                    return
                if time.monotonic() > deadline:
                    raise ConfigError(f"the replicas of 127.0.0.1:{port} did not come in sync within {timeout:.0f}s")

    def _wait_sentinels_agree(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        others, replicas = len(self.sentinels) - 1, len(self.servers) - 1
        for sentinel in self.sentinels:
            with redis.Redis(port=sentinel.port, socket_timeout=2, decode_responses=True) as client:
                while True:
                    state = client.sentinel_master(self.master)
                    if state["num-other-sentinels"] >= others and state["num-slaves"] >= replicas:
                        break
                    if time.monotonic() > deadline:
                        raise ConfigError(f"sentinel {sentinel.address} did not find its peers within {timeout:.0f}s")
                    time.sleep(0.1)

    async def master_port(self) -> int:
        """The primary's port, as the first sentinel that answers says."""
        for sentinel in self.sentinels:
            if sentinel.process is None:
                continue
            client = aioredis.Redis(port=sentinel.port, socket_timeout=1, socket_connect_timeout=1)
            try:
                reply: Any = await client.sentinel_get_master_addr_by_name(self.master)
                return int(reply[1])
            except (redis.RedisError, TypeError):
                continue
            finally:
                await client.aclose()
        raise ConfigError("no sentinel answered")

    async def wait_new_master(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until every sentinel names a primary other than ``old_port``, and
        it says it is one; returns its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = set()
            for sentinel in self.sentinels:
                client = aioredis.Redis(port=sentinel.port, socket_timeout=1, socket_connect_timeout=1)
                try:
                    reply: Any = await client.sentinel_get_master_addr_by_name(self.master)
                    ports.add(int(reply[1]))
                except (redis.RedisError, TypeError):
                    ports.add(0)
                finally:
                    await client.aclose()
            if len(ports) == 1 and (port := ports.pop()) not in (0, old_port) and await self._role(port) == "master":
                return port
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no sentinel named a new primary within {timeout:.0f}s")

    async def wait_replica_of(self, port: int, master_port: int, timeout: float = 30.0) -> None:
        """Wait until the server on ``port`` is an in-sync replica of ``master_port``."""
        deadline = time.monotonic() + timeout
        client = aioredis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
        try:
            while time.monotonic() < deadline:
                try:
                    info = await client.info("replication")
                    if info.get("role") == "slave" and info.get("master_port") == master_port and info.get("master_link_status") == "up":
                        return
                except redis.RedisError:
                    pass
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise TimeoutError(f"127.0.0.1:{port} did not become a replica of {master_port} within {timeout:.0f}s")

    @staticmethod
    async def _role(port: int) -> str:
        client = aioredis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)
        try:
            role: Any = await client.role()
            return str(role[0])
        except redis.RedisError:
            return ""
        finally:
            await client.aclose()

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
