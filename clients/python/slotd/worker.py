"""Worker: runs a handler per task with slotd's guarantees, as slotd-worker
does for a command (src/worker.c):

    take (Link) --> pending (in order) --slot free, < concurrency running--> running
         ^                                                               | returned: ack
         |                                                               | raised: retry later (slot stays busy)
         +------------ held < prefetch <---------------------------------+ or dead letter

Tasks of one slot run one after another, in the order taken; tasks of other
slots run in parallel, up to ``concurrency`` at once (threads, or processes
with ``pool="processes"``). Finished tasks are acknowledged together with the
next take, in one round trip.

A namespace in shards (``shards`` N > 1) is N namespaces, each with its own
slotd: the worker registers with its one id in each, through a Link (and a
heartbeat) per shard, takes from all of them into the one pending list, and
settles each task through the link that took it. Each slot belongs to one
shard, so the per-slot order above is per-key order in every shard. A shard
whose Redis fails backs off on its own; the others go on.

    link 0 (shard 0) --take--+
    link 1 (shard 1) --take--+--> pending --> running --ack/dead letter--> link i
    ...  round robin         |
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import pickle
import queue
import random
import signal
import threading
import time
import traceback
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import _redis
from .config import Config, make_config, valid_worker_id
from .deadletter import format_entry
from .keyslot import keyslot
from .link import Heartbeat, Link, Lost, Refused, SlotdError, Task

log = logging.getLogger("slotd")

#: A handler: called with each Task; returning acknowledges it, raising
#: makes it fail (to be retried, then dead-lettered).
Handler = Callable[[Task], Any]

_PENDING, _RUNNING, _WAITING, _DONE, _FAILED, _SETTLED = range(6)
_TRACEBACK_MAX = 4096


class _Raw(str):
    """A JSON number's text as written (for the routing key)."""


def routing_key(data: bytes, key_field: str) -> Tuple[Optional[bytes], Any]:
    """The routing key of a task as slotd finds it (docs/protocol.md,
    *Producers*): the top-level field key_field's string (its bytes) or
    number (as written); None when the whole task is hashed. Also returns the
    parsed JSON (or a marker that it was not parsed) for reuse."""
    if not key_field:
        return None, _NOT_PARSED
    try:
        obj = json.loads(data)
    except ValueError:
        return None, _NOT_PARSED
    if not isinstance(obj, dict):
        return None, obj
    v = obj.get(key_field, None)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogatepass"), obj
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raw = json.loads(data, parse_int=_Raw, parse_float=_Raw, parse_constant=_Raw)
        return str(raw[key_field]).encode(), obj
    return None, obj


_NOT_PARSED: Any = object()


def _invoke(handler: Handler, task: Task) -> Optional[Tuple[str, str]]:
    """Runs handler(task): None, or the exception and its traceback. A
    coroutine function's coroutine is run to its end with asyncio.run."""
    try:
        result = handler(task)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
        return None
    except Exception as e:  # noqa: BLE001 - any failure of the handler is the task's
        tb = traceback.format_exc()
        if len(tb) > _TRACEBACK_MAX:
            tb = "..." + tb[-_TRACEBACK_MAX:]
        return "%s: %s" % (type(e).__name__, e), tb


async def _await(aw: Any) -> Any:
    return await aw


def _child_init() -> None:
    # A process of the pool: the worker decides when to stop (SIGTERM to the
    # whole group must not kill a handler half way), and it dies with the
    # process that started it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Job:
    __slots__ = ("task", "shard", "state", "runs", "base", "retry_at", "failure")

    def __init__(self, task: Task, shard: int) -> None:
        self.task = task
        self.shard = shard          # index in Worker._shards of the link that took it
        self.state = _PENDING
        self.runs = 0
        self.base = task.attempt
        self.retry_at = 0.0
        self.failure: Optional[Tuple[str, str]] = None


class _Backoff:
    """Capped exponential delays with up to 25% jitter (src/backoff.c)."""

    def __init__(self, min_ms: int, max_ms: int) -> None:
        self.min_ms, self.max_ms, self.attempt = max(1, min_ms), max(min_ms, max_ms), 0

    def next_s(self) -> float:
        d = min(self.min_ms << min(self.attempt, 32), self.max_ms)
        self.attempt += 1
        return (d - random.randint(0, d // 4)) / 1000.0

    def reset(self) -> None:
        self.attempt = 0


def _retry_delay_s(runs: int, min_ms: int, max_ms: int) -> float:
    d = min(min_ms << min(runs - 1, 32), max_ms)
    return (d - random.randint(0, d // 4)) / 1000.0


class _Trouble:
    """A failure that repeats while the worker retries: said when it starts,
    then at most once a minute, and once when it is over."""

    def __init__(self, wid: str, what: str) -> None:
        self.wid, self.what = wid, what
        self.since = 0.0
        self.said = 0.0
        self.count = 0
        self.kind = ""

    def hit(self, err: BaseException) -> None:
        now = time.monotonic()
        kind = type(err).__name__ + str(err).split(":", 1)[0]
        refused = isinstance(err, Refused)
        level = logging.ERROR if refused else logging.WARNING
        if self.count == 0 or (refused and kind != self.kind):
            if self.count == 0:
                self.since = now
            log.log(level, "worker %s: %s: %s; retrying with backoff", self.wid, self.what, err)
            self.said, self.kind = now, kind
        elif now - self.said >= 60:
            log.log(level, "worker %s: still %s: %s (for %.0f s, %d failed attempts); retrying with backoff",
                    self.wid, self.what, err, now - self.since, self.count + 1)
            self.said = now
        self.count += 1

    def over(self, how: str) -> None:
        if self.count:
            log.info("worker %s: %s after %.1f s, %d failed attempts", self.wid, how,
                     time.monotonic() - self.since, self.count)
        self.count = 0
        self.kind = ""


def shard_wait_s(shards: int) -> float:
    """With several shards, how long a blocking take waits on one of them,
    and how long a shard whose queue was found empty is left alone: 25 ms
    per shard, 100 ms to 1 s, as slotd-worker (src/worker.c,
    shard_wait_ms). A task arriving in an empty shard waits at most that
    long, and a worker costs each shard's Redis at most 1 / wait looks a
    second, idle or busy (about 40 commands a second in all)."""
    return min(max(0.025 * shards, 0.1), 1.0)


def _role(base: str, shard: int, shards: int) -> str:
    """The client factory's role name of a shard's connection: ``worker``,
    or ``worker#<i>`` when the namespace is in shards."""
    return base if shards == 1 else "%s#%d" % (base, shard)


class _Shard:
    """One shard's link (the namespace's own when not sharded) and what the
    worker knows of it."""

    def __init__(self, index: int, link: Link, trouble: _Trouble, down: _Backoff) -> None:
        self.index = index              # 0 when not sharded
        self.link = link
        self.beat: Optional[Heartbeat] = None   # runs once registered
        self.trouble = trouble          # its connection's failures, said once per episode
        self.down = down                # between failed calls to this shard
        self.retry_at = 0.0             # monotonic: no call to this shard before
        self.quiet_until = 0.0          # its queue was found empty: not looked at before

    def due(self, now: float) -> bool:
        """Not backing off."""
        return self.retry_at <= now

    def usable(self, now: float) -> bool:
        """Worth taking from: registered, heartbeating, not backing off."""
        return self.beat is not None and self.retry_at <= now

    def failed(self, err: SlotdError) -> None:
        """A call failed: said (as the episode says it), and no other call
        to this shard before its backoff."""
        self.trouble.hit(err)
        self.retry_at = time.monotonic() + self.down.next_s()

    def worked(self) -> None:
        """A call went through."""
        if self.trouble.count:
            self.trouble.over("working again")
            self.down.reset()
        self.retry_at = 0.0


class Worker:
    """A slotd worker running ``handler`` for each task of its queue.

    Give it slotd's configuration file (``config="/etc/slotd/slotd.yaml"``,
    or a :class:`Config`), options by keyword, or both (options win):
    ``id`` (required), ``concurrency`` (handlers at once, never two of one
    slot; default 1), ``pool`` (``"threads"`` or ``"processes"``), and any
    :class:`Config` field: ``host``, ``port``, ``unix``, ``db``,
    ``username``, ``password``, ``sentinels``, ``sentinel_master``,
    ``namespace``, ``key_field``, ``heartbeat_ttl_ms``, ``prefetch``,
    ``max_attempts``, ``weight``, ``retry_min_ms``, ``retry_max_ms``, ...

    ``client_factory`` replaces how Redis clients are made (see _redis.py):
    a function of a role name returning a ``redis.Redis``.

    With ``shards`` above 1 (in the file, or as an option) it serves every
    shard of the namespace: it registers with its id in each, takes from
    each in turn, and settles each task in the shard it came from.
    """

    def __init__(self, handler: Optional[Handler] = None, *, id: str, config: Any = None,
                 concurrency: int = 1, pool: str = "threads",
                 client_factory: Optional[_redis.ClientFactory] = None,
                 install_signal_handlers: bool = True, **options: Any) -> None:
        if isinstance(config, Config):
            self.config = make_config(base=config, **options)
        else:
            self.config = make_config(config, **options)
        if not valid_worker_id(id):
            raise ValueError("invalid worker id %r: 1-64 of [A-Za-z0-9._-]" % id)
        if concurrency < 1 or concurrency > 1024:
            raise ValueError("concurrency must be 1..1024")
        if pool not in ("threads", "processes"):
            raise ValueError("pool must be 'threads' or 'processes'")
        #: The worker's id.
        self.id = id
        self.concurrency = concurrency
        self.pool = pool
        self._handler = handler
        self._factory = client_factory or _redis.client_factory(self.config, "slotd-worker:" + id)
        self._signals = install_signal_handlers
        self._stopping = threading.Event()
        self._done_q: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._jobs: List[_Job] = []
        self._busy: Dict[int, int] = {}     # slot -> its job running or waiting for a retry
        self._running = 0
        self._executor: Optional[Executor] = None
        self._shards: List[_Shard] = []     # one per shard, in order
        self._next_take = 0                 # the shard the next round of takes starts at
        self._next_wait = 0                 # the shard the next blocking take waits on
        #: Tasks acknowledged and dead-lettered since start.
        self.acked = 0
        self.dead_lettered = 0

    def handler(self, fn: Handler) -> Handler:
        """Decorator: makes fn this worker's handler (``@worker.handler``)."""
        self._handler = fn
        return fn

    def stop(self) -> None:
        """Asks the worker to stop as SIGTERM does: it finishes what runs,
        gives back what it holds, and leaves. Safe from any thread or a
        signal handler."""
        self._stopping.set()
        self._done_q.put(None)

    # ---- running ----------------------------------------------------------

    def run(self) -> None:
        """Registers (in every shard when ``shards`` is above 1), works until
        :meth:`stop` (or SIGTERM/SIGINT), then leaves gracefully. Blocks."""
        if self._handler is None:
            raise ValueError("the worker has no handler: pass one or decorate it with @worker.handler")
        cfg = self.config
        inline = self.pool == "threads" and self.concurrency == 1
        if self.pool == "processes":
            try:
                pickle.dumps(self._handler)
            except Exception as e:
                raise ValueError("pool='processes' needs a handler defined at the top level of a"
                                 " module (it is pickled by name): %s" % e) from None
        old_handlers: Dict[int, Any] = {}
        if self._signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                old_handlers[sig] = signal.signal(sig, lambda s, f: self.stop())
        n = cfg.shards
        shards = self._shards = []
        for i in range(n):
            ns, where = (cfg.namespace, "") if n == 1 else ("%s#%d" % (cfg.namespace, i), ", shard %d" % i)
            link = Link(self._factory(_role("worker", i, n)), ns, self.id, cfg.heartbeat_ttl_ms, cfg.weight,
                        cfg.prefetch)
            shards.append(_Shard(i, link, _Trouble(self.id, "Redis (%s%s)" % (_redis.describe(cfg), where)),
                                 _Backoff(cfg.reconnect_min_ms, cfg.reconnect_max_ms)))
        try:
            if self.pool == "processes":
                import multiprocessing
                self._executor = ProcessPoolExecutor(self.concurrency, multiprocessing.get_context("forkserver"),
                                                     initializer=_child_init)
            elif not inline:
                self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="slotd-handler")
            self._loop(inline)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            for sh in shards:
                if sh.beat is not None:
                    sh.beat.stop()
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            self._leave()
            for sh in shards:
                sh.link.close()

    def _bring_up(self, sh: "_Shard") -> None:
        """Registers sh's link (what a previous run of this id left in that
        shard's in-flight list goes back to the front of its queue) and
        starts its heartbeat; on a failure it tries again after its backoff,
        while the other shards work."""
        if sh.beat is not None or not sh.due(time.monotonic()):
            return
        try:
            moved = sh.link.register()
        except SlotdError as e:
            sh.failed(e)
            return
        sh.trouble.over("registered")
        sh.down.reset()
        sh.retry_at = 0.0
        cfg = self.config
        n = len(self._shards)
        sh.beat = Heartbeat(sh.link, self._factory(_role("heartbeat", sh.index, n)))
        sh.beat.start()
        log.info("worker %s registered%s (prefetch %d, concurrency %d %s, weight %d)%s", self.id,
                 " in shard %d of %d" % (sh.index, n) if n > 1 else "", cfg.prefetch, self.concurrency,
                 self.pool, cfg.weight, "; %d tasks of a previous run back in the queue" % moved if moved else "")

    def _leave(self) -> None:
        """Leaves every shard it registered with: each link gives back what
        it holds there (not started, and waiting for a retry) and deregisters."""
        given = sum(1 for j in self._jobs if j.state in (_PENDING, _WAITING))
        waiting = sum(1 for j in self._jobs if j.state == _WAITING)
        if waiting:
            log.info("worker %s: giving back %d tasks awaiting a retry", self.id, waiting)
        n = len(self._shards)
        for sh in self._shards:
            if sh.beat is None:
                continue
            where = " shard %d" % sh.index if n > 1 else ""
            try:
                sh.link.leave()
                log.info("worker %s left%s%s", self.id, where,
                         ", giving back %d tasks it held" % given if given and n == 1 else "")
            except SlotdError as e:
                log.error("worker %s: leave failed%s: %s; slotd declares it dead once its heartbeat expires",
                          self.id, where.replace(" shard", " in shard"), e)
        if given and n > 1:
            log.info("worker %s gave back %d tasks it held", self.id, given)
        self._jobs = []

    def _route(self, task: Task) -> None:
        key, parsed = routing_key(task.data, self.config.key_field)
        task.key = key
        task.slot = keyslot(task.data if key is None else key)
        task.worker_id = self.id
        if parsed is not _NOT_PARSED:
            task._json = parsed

    def _start(self, job: _Job, inline: bool) -> None:
        job.runs += 1
        task = job.task
        task.attempt = job.base + job.runs - 1
        if inline:
            self._finish(job, _invoke(self._handler, task))   # type: ignore[arg-type]
            return
        job.state = _RUNNING
        self._running += 1
        self._busy[task.slot] = self._busy.get(task.slot, 0) + 1
        assert self._executor is not None
        fut = self._executor.submit(_invoke, self._handler, task)
        fut.add_done_callback(lambda f, j=job: self._done_q.put((j, f)))

    def _finish(self, job: _Job, failure: Optional[Tuple[str, str]]) -> None:
        cfg = self.config
        slot = job.task.slot
        if failure is None:
            job.state = _DONE
        elif job.runs < cfg.max_attempts:
            delay = _retry_delay_s(job.runs, cfg.retry_min_ms, cfg.retry_max_ms)
            job.state = _WAITING
            job.retry_at = time.monotonic() + delay
            self._busy[slot] = self._busy.get(slot, 0) + 1
            log.info("worker %s: task of slot %d failed (%s), retry %d of %d in %d ms", self.id, slot,
                     failure[0], job.runs, cfg.max_attempts - 1, delay * 1000)
        else:
            job.state = _FAILED
            job.failure = failure

    def _collect(self, timeout: float) -> None:
        """Takes in the pool's finished handlers, waiting up to timeout for one."""
        try:
            item = self._done_q.get(timeout=timeout) if timeout > 0 else self._done_q.get_nowait()
        except queue.Empty:
            return
        while True:
            if item is not None:
                job, fut = item
                self._running -= 1
                slot = job.task.slot
                self._busy[slot] -= 1
                if not self._busy[slot]:
                    del self._busy[slot]
                exc = fut.exception()
                failure = fut.result() if exc is None else ("%s: %s" % (type(exc).__name__, exc), "")
                self._finish(job, failure)
            try:
                item = self._done_q.get_nowait()
            except queue.Empty:
                return

    def _schedule(self, inline: bool) -> None:
        now = time.monotonic()
        busy = self._busy
        jobs = self._jobs
        limit = 1 if inline else self.concurrency
        for job in jobs:
            if job.state == _WAITING and job.retry_at <= now and (inline or self._running < limit):
                slot = job.task.slot
                busy[slot] -= 1
                if not busy[slot]:
                    del busy[slot]
                self._start(job, inline)
        for job in jobs:
            if job.state == _PENDING and job.task.slot not in busy:
                if not inline and self._running >= limit:
                    break
                self._start(job, inline)

    def _dead_letters(self) -> None:
        """Dead-letters the tasks that failed their last attempt, each in
        its shard; one that cannot be yet stays, and its shard backs off."""
        if not any(j.state == _FAILED for j in self._jobs):
            return
        now = time.monotonic()
        for job in self._jobs:
            sh = self._shards[job.shard]
            if job.state != _FAILED or not sh.due(now):
                continue
            assert job.failure is not None
            what, tb = job.failure
            detail = "%s after %d attempts; traceback: %s" % (what, job.runs, tb)
            try:
                sh.link.dead_letter(job.task, format_entry("failed", detail, job.task.data))
            except SlotdError as e:
                log.error("worker %s: cannot dead-letter a task of slot %d yet: %s", self.id, job.task.slot, e)
                sh.retry_at = now + sh.down.next_s()
                continue
            log.warning("worker %s: task of slot %d dead-lettered: %s after %d attempts", self.id,
                        job.task.slot, what, job.runs)
            job.state = _SETTLED
            self.dead_lettered += 1
        self._jobs = [j for j in self._jobs if j.state != _SETTLED]

    def _settled(self, link: Link, done: List[_Job]) -> None:
        for job in done:
            if not link.holds(job.task):
                job.state = _SETTLED
                self.acked += 1
        self._jobs = [j for j in self._jobs if j.state != _SETTLED]

    def _exchange(self, sh: "_Shard", done: List[_Job], n: int, block: bool, block_s: float) -> int:
        """Acknowledges sh's done and takes up to n from sh (waiting up to
        block_s for the first with block), in one round trip: how many came,
        or -1 when the call failed (said, and the shard backs off)."""
        try:
            new = sh.link.ack_and_take([j.task for j in done], n, block=block, block_s=block_s)
        except Refused as e:
            sh.failed(e)
            self._add(e.taken, sh.index)
            self._settled(sh.link, done)
            return -1
        except Lost as e:
            sh.failed(e)
            return -1
        sh.worked()
        self._settled(sh.link, done)
        self._add(new, sh.index)
        return len(new)

    def _take(self, done: List[_Job], idle: bool) -> int:
        """Acknowledges what is done and takes, fairly across the shards:
        each turn starts at the next shard in turn, and each may take its
        share of the room left (the room over the shards still to ask,
        rounded up), so busy shards split the prefetch and one found empty
        (left alone for shard_wait_s) leaves its share to the others. When
        nothing came and the worker is idle, it waits for a task on one
        shard, the next in turn, for shard_wait_s. With one shard: one round
        trip, waiting up to BLOCK_S when idle. How many came."""
        shards = self._shards
        prefetch = self.config.prefetch
        now = time.monotonic()
        if len(shards) == 1:
            sh = shards[0]
            if not sh.usable(now):
                return 0
            room = prefetch - len(self._jobs) + len(done)
            return max(0, self._exchange(sh, done, max(room, 0), idle, _redis.BLOCK_S))
        by: Dict[int, List[_Job]] = {}
        for j in done:
            by.setdefault(j.shard, []).append(j)
        usable = [sh for sh in shards if sh.usable(now)]
        room = prefetch - len(self._jobs) + sum(len(by.get(sh.index, ())) for sh in usable)
        quiet_s = shard_wait_s(len(shards))
        left = len(usable)
        total = 0
        for k in range(len(shards)):
            sh = shards[(self._next_take + k) % len(shards)]
            if not sh.usable(now):
                continue
            mine = by.get(sh.index, [])
            share = 0 if sh.quiet_until > now or room <= 0 else (room + left - 1) // left
            left -= 1
            if not share and not mine:
                continue
            got = self._exchange(sh, mine, share, False, 0.0)
            if share:
                sh.quiet_until = now + quiet_s if got == 0 else 0.0
            if got > 0:
                room -= got
                total += got
        self._next_take = (self._next_take + 1) % len(shards)
        if total or not idle or self._jobs:
            return total
        for k in range(len(shards)):
            sh = shards[(self._next_wait + k) % len(shards)]
            if not sh.usable(time.monotonic()):
                continue
            self._next_wait = (sh.index + 1) % len(shards)
            got = self._exchange(sh, [], prefetch, True, quiet_s)
            sh.quiet_until = time.monotonic() + quiet_s if got == 0 else 0.0
            return max(got, 0)
        return 0

    def _until_retry(self, cap: float) -> float:
        """Seconds until the first shard backing off may be called again
        (0 for one due and not yet registered), at most cap."""
        now = time.monotonic()
        wait = cap
        for sh in self._shards:
            if sh.retry_at > now:
                wait = min(wait, sh.retry_at - now)
            elif sh.beat is None:
                wait = 0.0
        return max(wait, 0.001)

    def _loop(self, inline: bool) -> None:
        prefetch = self.config.prefetch
        stopping = self._stopping
        shards = self._shards
        while True:
            if not inline:
                self._collect(0)
            if not stopping.is_set():
                for sh in shards:
                    self._bring_up(sh)
            self._dead_letters()
            if not stopping.is_set():
                self._schedule(inline)
                if inline:
                    now = time.monotonic()
                    if any(j.state == _FAILED and shards[j.shard].due(now) for j in self._jobs):
                        continue
            done = [j for j in self._jobs if j.state == _DONE]
            waiting = any(j.state == _WAITING for j in self._jobs)
            if stopping.is_set():
                if done:
                    for sh in shards:
                        mine = [j for j in done if j.shard == sh.index]
                        if not mine:
                            continue
                        try:
                            sh.link.ack([j.task for j in mine])
                        except SlotdError as e:
                            sh.trouble.hit(e)
                            if self._running == 0 and sh.trouble.count >= 5:
                                log.warning("worker %s: stopping with %d tasks not acknowledged: leaving puts"
                                            " them back, and they run again", self.id, len(mine))
                                return
                            time.sleep(sh.down.next_s())
                        self._settled(sh.link, mine)
                    continue
                # A dead letter refused meanwhile is tried again after its
                # shard's backoff, as it would be while working.
                if self._running == 0 and not any(j.state == _FAILED for j in self._jobs):
                    return
                self._collect(0.05)
                continue
            room = prefetch - len(self._jobs) + len(done)
            if room > 0 or done:
                idle = self._running == 0 and not waiting and len(done) == len(self._jobs)
                if self._take(done, idle):
                    continue
                if idle and any(sh.usable(time.monotonic()) for sh in shards):
                    continue
            # Nothing to take or nothing came: wait for a handler or a retry.
            wait = 0.02
            if waiting:
                due = min(j.retry_at for j in self._jobs if j.state == _WAITING) - time.monotonic()
                wait = max(0.0, min(wait if room > 0 else 1.0, due))
            elif room <= 0:
                wait = 1.0
            elif self._running == 0 and not self._jobs:
                wait = self._until_retry(0.1)   # every shard backs off, or is not up yet
            if inline:
                if wait > 0:
                    stopping.wait(wait)
            else:
                self._collect(wait)

    def _add(self, tasks: List[Task], shard: int) -> None:
        for t in tasks:
            self._route(t)
            self._jobs.append(_Job(t, shard))
