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
    __slots__ = ("task", "state", "runs", "base", "retry_at", "failure")

    def __init__(self, task: Task) -> None:
        self.task = task
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
        self._link: Optional[Link] = None
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
        """Registers, works until :meth:`stop` (or SIGTERM/SIGINT), then
        leaves gracefully. Blocks."""
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
        trouble = _Trouble(self.id, "Redis (%s)" % _redis.describe(cfg))
        down = _Backoff(cfg.reconnect_min_ms, cfg.reconnect_max_ms)
        link = self._link = Link(self._factory("worker"), cfg.namespace, self.id, cfg.heartbeat_ttl_ms,
                                 cfg.weight, cfg.prefetch)
        beat: Optional[Heartbeat] = None
        try:
            while not self._stopping.is_set():
                try:
                    moved = link.register()
                    break
                except SlotdError as e:
                    trouble.hit(e)
                    self._stopping.wait(down.next_s())
            else:
                return
            trouble.over("registered")
            down.reset()
            beat = Heartbeat(link, self._factory("heartbeat"))
            beat.start()
            if self.pool == "processes":
                import multiprocessing
                self._executor = ProcessPoolExecutor(self.concurrency, multiprocessing.get_context("forkserver"),
                                                     initializer=_child_init)
            elif not inline:
                self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="slotd-handler")
            log.info("worker %s registered (prefetch %d, concurrency %d %s, weight %d)%s", self.id, cfg.prefetch,
                     self.concurrency, self.pool, cfg.weight,
                     "; %d tasks of a previous run back in the queue" % moved if moved else "")
            self._loop(link, inline, trouble, down)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if beat is not None:
                beat.stop()
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            self._leave(link, beat is not None)
            link.close()

    def _leave(self, link: Link, registered: bool) -> None:
        if not registered:
            return
        given = sum(1 for j in self._jobs if j.state in (_PENDING, _WAITING))
        waiting = sum(1 for j in self._jobs if j.state == _WAITING)
        if waiting:
            log.info("worker %s: giving back %d tasks awaiting a retry", self.id, waiting)
        try:
            link.leave()
            log.info("worker %s left%s", self.id, ", giving back %d tasks it held" % given if given else "")
        except SlotdError as e:
            log.error("worker %s: leave failed: %s; slotd declares it dead once its heartbeat expires", self.id, e)
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

    def _dead_letters(self, link: Link) -> bool:
        """Dead-letters the tasks that failed their last attempt; False if
        one could not be (it stays, to be tried again)."""
        ok = True
        if not any(j.state == _FAILED for j in self._jobs):
            return True
        for job in self._jobs:
            if job.state != _FAILED:
                continue
            assert job.failure is not None
            what, tb = job.failure
            detail = "%s after %d attempts; traceback: %s" % (what, job.runs, tb)
            try:
                link.dead_letter(job.task, format_entry("failed", detail, job.task.data))
            except SlotdError as e:
                log.error("worker %s: cannot dead-letter a task of slot %d yet: %s", self.id, job.task.slot, e)
                ok = False
                continue
            log.warning("worker %s: task of slot %d dead-lettered: %s after %d attempts", self.id,
                        job.task.slot, what, job.runs)
            job.state = _SETTLED
            self.dead_lettered += 1
        self._jobs = [j for j in self._jobs if j.state != _SETTLED]
        return ok

    def _settled(self, link: Link, done: List[_Job]) -> None:
        for job in done:
            if not link.holds(job.task):
                job.state = _SETTLED
                self.acked += 1
        self._jobs = [j for j in self._jobs if j.state != _SETTLED]

    def _loop(self, link: Link, inline: bool, trouble: _Trouble, down: _Backoff) -> None:
        prefetch = self.config.prefetch
        stopping = self._stopping
        while True:
            if not inline:
                self._collect(0)
            if not self._dead_letters(link):
                time.sleep(down.next_s())
                continue
            if not stopping.is_set():
                self._schedule(inline)
                if inline and any(j.state == _FAILED for j in self._jobs):
                    continue
            done = [j for j in self._jobs if j.state == _DONE]
            waiting = any(j.state == _WAITING for j in self._jobs)
            if stopping.is_set():
                if done:
                    try:
                        link.ack([j.task for j in done])
                    except SlotdError as e:
                        trouble.hit(e)
                        if self._running == 0 and trouble.count >= 5:
                            log.warning("worker %s: stopping with %d tasks not acknowledged: leaving puts"
                                        " them back, and they run again", self.id, len(done))
                            return
                        time.sleep(down.next_s())
                    self._settled(link, done)
                    continue
                if self._running == 0:
                    return
                self._collect(0.05)
                continue
            room = prefetch - len(self._jobs) + len(done)
            if room > 0 or done:
                idle = self._running == 0 and not waiting and len(done) == len(self._jobs)
                try:
                    new = link.ack_and_take([j.task for j in done], max(room, 0), block=idle,
                                            block_s=_redis.BLOCK_S)
                except Refused as e:
                    new = e.taken
                    trouble.hit(e)
                    self._add(new)
                    self._settled(link, done)
                    time.sleep(down.next_s())
                    continue
                except Lost as e:
                    trouble.hit(e)
                    time.sleep(down.next_s())
                    continue
                if trouble.count:
                    trouble.over("working again")
                    down.reset()
                self._settled(link, done)
                if new:
                    self._add(new)
                    continue
                if idle:
                    continue
            # Nothing to take or nothing came: wait for a handler or a retry.
            wait = 0.02
            if waiting:
                due = min(j.retry_at for j in self._jobs if j.state == _WAITING) - time.monotonic()
                wait = max(0.0, min(wait if room > 0 else 1.0, due))
            elif room <= 0:
                wait = 1.0
            if inline:
                if wait > 0:
                    stopping.wait(wait)
            else:
                self._collect(wait)

    def _add(self, tasks: List[Task]) -> None:
        for t in tasks:
            self._route(t)
            self._jobs.append(_Job(t))
