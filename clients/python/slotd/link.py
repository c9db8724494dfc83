"""The worker side of docs/protocol.md over one Redis connection: what
libslotd (src/slotd_worker.c) does, with its scripts.

    link = Link(client, namespace="slotd", worker_id="w1")
    link.register()                      # own in-flight back to the queue, heartbeat
    tasks = link.take(16, block=True)    # atomically into the in-flight list
    link.ack(tasks)                      # one round trip for the lot
    link.leave()

Every write is one script that checks its keys' types first, so a refusal
(:class:`Refused`) changes nothing and the tasks stay held. A reply lost on
the way (:class:`Lost`) is put right on the next call, before anything
else: the link reads its in-flight list, gives back to the queue's tail, in
order, what a lost take moved there that it does not know it holds, and
finds out which of the acknowledgements or dead letters in doubt were done.
One link is used by one thread.
"""
from __future__ import annotations

import collections
import json
import os
import socket
import threading
import logging
from typing import Any, Counter, Dict, Iterable, List, Optional, Sequence, Tuple

import redis
from redis.exceptions import ConnectionError as _ConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as _TimeoutError

from . import _scripts
from .config import valid_worker_id

log = logging.getLogger("slotd")

_IO_ERRORS = (_ConnectionError, _TimeoutError, OSError)

_TAKE = _scripts.TAKE.encode()
_ACK = _scripts.ACK.encode()
_DEAD = _scripts.DEAD.encode()
_RECOVER = _scripts.RECOVER.encode()
_BEAT = _scripts.BEAT.encode()
_LEAVE = _scripts.LEAVE.encode()


class SlotdError(Exception):
    """A step of the protocol that did not happen."""


class Refused(SlotdError):
    """Redis answered with an error (a key of the wrong type, out of memory,
    a command the ACL user lacks): nothing changed, the tasks are still held.
    ``taken`` holds the tasks a take sent with a refused ack brought in."""

    def __init__(self, message: str, taken: Optional[List["Task"]] = None) -> None:
        super().__init__(message)
        self.taken: List[Task] = taken or []


class Lost(SlotdError):
    """The connection failed before the reply: the next call reconnects and
    puts right whatever Redis did meanwhile."""


def fingerprint(data: bytes) -> str:
    """The task's fingerprint for ``{ns}:attempts``: 64-bit FNV-1a of its
    bytes as 16 lowercase hex digits."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


class Task:
    """A task taken from the worker's queue: its bytes, its attempt number
    (1, plus one for each worker that died or restarted holding it), and, as
    the Worker fills them in, its routing key and slot."""

    __slots__ = ("data", "attempt", "key", "slot", "worker_id", "_json")

    def __init__(self, data: bytes, attempt: int = 1) -> None:
        #: The task's bytes, exactly as the producer pushed them.
        self.data = data
        #: 1 the first time it runs; see docs/protocol.md, *Attempts*.
        self.attempt = attempt
        #: The routing key's bytes, or None when the whole task is hashed.
        self.key: Optional[bytes] = None
        #: The slot, 0..16383.
        self.slot = 0
        #: The id of the worker running it.
        self.worker_id = ""
        self._json: Any = _UNPARSED

    @property
    def json(self) -> Any:
        """The task parsed as JSON (raises ValueError if it is not JSON)."""
        if self._json is _UNPARSED:
            self._json = json.loads(self.data)
        return self._json

    @property
    def text(self) -> str:
        """The task's bytes as text (UTF-8, bad bytes escaped)."""
        return self.data.decode("utf-8", "backslashreplace")

    def __getstate__(self) -> Tuple[Any, ...]:
        return (self.data, self.attempt, self.key, self.slot, self.worker_id, self._json)

    def __setstate__(self, state: Tuple[Any, ...]) -> None:
        self.data, self.attempt, self.key, self.slot, self.worker_id, self._json = state

    def __repr__(self) -> str:
        return "Task(%r, attempt=%d)" % (self.data[:80], self.attempt)


class _Unparsed:
    __slots__ = ()

    def __reduce__(self) -> str:
        return "_UNPARSED"


_UNPARSED: Any = _Unparsed()


def _get_connection(client: "redis.Redis") -> Any:
    """A connection of client's pool, connected; raises Lost when it cannot
    connect (Redis down, or with Redis Cluster no seed naming a master):
    nothing was sent, and the next call tries again."""
    try:
        return client.connection_pool.get_connection("EVAL")
    except _IO_ERRORS as e:
        raise Lost("cannot connect to Redis: %s" % e) from None


def _exchange(c: Any, cmds: Sequence[Sequence[Any]]) -> List[Any]:
    """Sends cmds on connection c in one write and reads every reply; an
    error reply comes back as a ResponseError in its place. Raises Lost
    (and drops c) when the connection fails."""
    try:
        c.send_packed_command(c.pack_commands(cmds))
        out: List[Any] = []
        for _ in cmds:
            try:
                out.append(c.read_response())
            except ResponseError as e:
                out.append(e)
        return out
    except _IO_ERRORS as e:
        c.disconnect()
        raise Lost("Redis connection lost: %s" % e) from None


def _error_text(what: str, e: BaseException) -> str:
    return "%s refused: %s" % (what, e)


class Link:
    """One worker's connection to Redis, speaking the worker side of the
    protocol (libslotd's calls). ``client`` is a ``redis.Redis`` whose pool
    gives the link one connection for its life."""

    def __init__(self, client: "redis.Redis", namespace: str = "slotd", worker_id: str = "",
                 heartbeat_ttl_ms: int = 3000, weight: int = 1, prefetch: int = 16) -> None:
        if not valid_worker_id(worker_id):
            raise ValueError("invalid worker id %r: 1-64 of [A-Za-z0-9._-]" % worker_id)
        self.worker_id = worker_id
        self.namespace = namespace
        self.heartbeat_ttl_ms = heartbeat_ttl_ms
        self.prefetch = prefetch
        k = "{%s}:" % namespace
        self.queue = (k + "queue:" + worker_id).encode()
        self.inflight = (k + "inflight:" + worker_id).encode()
        self.hb = (k + "hb:" + worker_id).encode()
        self.workers = (k + "workers").encode()
        self.attempts = (k + "attempts").encode()
        self.dead = (k + "dead").encode()
        self.beat_value = json.dumps({"host": socket.gethostname()[:100], "pid": os.getpid(),
                                      "weight": weight}, separators=(",", ":")).encode()
        self._client = client
        self._conn: Any = None
        self._held: Dict[int, Task] = {}    # id(task) -> task: taken, not yet acked
        self._unsure = False                # a write's reply was lost: look before going on
        self._doubt: List[Task] = []        # acks and dead letters whose reply was lost
        self._ack_refused = False           # the last ack was refused: take no more room

    # ---- the connection -------------------------------------------------

    @property
    def held(self) -> int:
        """How many tasks are held: taken and not yet acknowledged."""
        return len(self._held)

    def holds(self, task: Task) -> bool:
        """Whether task is still held by this link."""
        return id(task) in self._held and self._held[id(task)] is task

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = _get_connection(self._client)
        return self._conn

    def _send(self, *cmds: Sequence[Any]) -> List[Any]:
        """Sends cmds in one write and reads every reply; an error reply
        comes back as a ResponseError in its place. Raises Lost."""
        return _exchange(self._connection(), cmds)

    def _ready(self) -> None:
        """Puts right what a lost reply may have left, before anything else."""
        if self._unsure:
            self._reconcile()

    def close(self) -> None:
        """Drops the connection (without leaving: the heartbeat expires)."""
        if self._conn is not None:
            self._conn.disconnect()
            self._client.connection_pool.release(self._conn)
            self._conn = None
        self._client.close()

    # ---- lost replies ---------------------------------------------------

    def _reconcile(self) -> None:
        """After a lost reply: the in-flight list (newest at its head) is the
        tasks held, with those of the acks and dead letters in doubt perhaps
        gone, under whatever a lost take pushed at its head. Gives those back
        to the queue's tail in order (the recover script, guarded by the
        length read), and forgets the tasks in doubt that are gone."""
        while True:
            got = self._send((b"LRANGE", self.inflight, 0, -1))[0]
            if isinstance(got, ResponseError):
                raise Refused(_error_text("reading " + self.inflight.decode(), got))
            avail: Counter[bytes] = collections.Counter(t.data for t in self._held.values())
            kept = 0
            for x in reversed(got):
                if avail[x] <= 0:
                    break
                avail[x] -= 1
                kept += 1
            extra = len(got) - kept
            if extra > 0:
                r = self._send((b"EVAL", _RECOVER, 3, self.inflight, self.queue, self.attempts,
                                len(got), kept))[0]
                if isinstance(r, ResponseError):
                    if str(r).startswith("CHANGED"):
                        continue
                    raise Refused(_error_text("giving back what a lost take moved", r))
                log.info("worker %s: gave back %d tasks that a take whose reply was lost had moved"
                         " into %s", self.worker_id, extra, self.inflight.decode())
            break
        present: Counter[bytes] = collections.Counter(got[extra:])
        sure: Counter[bytes] = collections.Counter(t.data for t in self._held.values())
        doubt: Counter[bytes] = collections.Counter(t.data for t in self._doubt)
        sure.subtract(doubt)
        for t in self._doubt:
            # Copies in the list beyond those surely held: not yet removed.
            if present[t.data] > sure[t.data]:
                present[t.data] -= 1
            else:
                self._held.pop(id(t), None)
        self._doubt = []
        self._unsure = False

    # ---- the protocol's steps -------------------------------------------

    def register(self) -> int:
        """Puts what a previous run with this id left in flight back at the
        front of the queue, in order (their attempt goes up by one), then
        heartbeats, which registers the worker. Returns how many moved."""
        while True:
            got = self._send((b"LRANGE", self.inflight, 0, -1))[0]
            if isinstance(got, ResponseError):
                raise Refused(_error_text("reading " + self.inflight.decode(), got))
            moved = 0
            if got:
                r = self._send([b"EVAL", _RECOVER, 3, self.inflight, self.queue, self.attempts,
                                len(got), 0] + [fingerprint(t) for t in got])[0]
                if isinstance(r, ResponseError):
                    if str(r).startswith("CHANGED"):
                        continue
                    raise Refused(_error_text("recovering the in-flight list", r))
                moved = int(r)
            break
        self._held.clear()
        self._doubt = []
        self._unsure = False
        self.heartbeat()
        return moved

    def heartbeat(self) -> None:
        """One heartbeat on this link's connection (registers the worker)."""
        beat(self._send, self.hb, self.workers, self.beat_value, self.heartbeat_ttl_ms, self.worker_id)

    def _taken(self, reply: Any) -> Tuple[List[Task], int]:
        if isinstance(reply, ResponseError):
            raise Refused(_error_text("take", reply))
        got, known = reply
        tasks = [Task(d) for d in got]
        held = self._held
        for t in tasks:
            held[id(t)] = t
        return tasks, known

    def _attempts(self, tasks: List[Task]) -> None:
        try:
            r = self._send([b"HMGET", self.attempts] + [fingerprint(t.data) for t in tasks])[0]
        except Lost:
            return      # taken all the same; attempts shown as 1
        if isinstance(r, list):
            for t, v in zip(tasks, r):
                if v is not None:
                    try:
                        t.attempt = 1 + int(v)
                    except ValueError:
                        pass

    def take(self, n: int, block: bool = False, block_s: float = 1.0) -> List[Task]:
        """Takes up to n tasks (never more than prefetch held in all) from
        the queue into the in-flight list, atomically, oldest first; with
        block, waits up to block_s for the first when the queue is empty."""
        return self.ack_and_take((), n, block, block_s)

    def ack_and_take(self, done: Iterable[Task], n: int, block: bool = False,
                     block_s: float = 1.0) -> List[Task]:
        """Acknowledges done, then takes up to n tasks, in one round trip
        (the ack script, then the take script). If the ack is refused the
        tasks taken are kept and :class:`Refused` is raised with them in
        ``.taken``: done is still held, to be acknowledged again."""
        self._ready()
        done = [t for t in done if id(t) in self._held]
        # Room counts the tasks acknowledged first as gone, unless the last
        # ack was refused: then the held stay within prefetch meanwhile.
        freed = 0 if self._ack_refused else len(done)
        n = min(n, self.prefetch - (len(self._held) - freed))
        cmds: List[Sequence[Any]] = []
        if done:
            cmds.append(self._ack_cmd(done))
        if n > 0:
            cmds.append((b"EVAL", _TAKE, 3, self.queue, self.inflight, self.attempts, n))
        if not cmds:
            return []
        try:
            replies = self._send(*cmds)
        except Lost:
            self._unsure = True
            self._doubt.extend(done)
            raise
        tasks: List[Task] = []
        known = 0
        ack_err: Optional[ResponseError] = None
        if done:
            if isinstance(replies[0], ResponseError):
                ack_err = replies[0]
                self._ack_refused = True
            else:
                self._ack_refused = False
                held = self._held
                for t in done:
                    held.pop(id(t), None)
        if n > 0:
            tasks, known = self._taken(replies[-1])
            if not tasks and block:
                try:
                    r = self._send((b"BLMOVE", self.queue, self.inflight, b"RIGHT", b"LEFT", block_s))[0]
                except Lost:
                    self._unsure = True
                    raise
                if isinstance(r, ResponseError):
                    raise Refused(_error_text("waiting for a task (BLMOVE)", r))
                if r is not None:
                    tasks, known = self._taken([[r], 1])
            if tasks and known:
                self._attempts(tasks)
        if ack_err is not None:
            raise Refused(_error_text("ack", ack_err), tasks)
        return tasks

    def _ack_cmd(self, done: List[Task]) -> List[Any]:
        cmd: List[Any] = [b"EVAL", _ACK, 2, self.inflight, self.attempts, len(done)]
        cmd.extend(t.data for t in done)
        cmd.extend(fingerprint(t.data) for t in done if t.attempt > 1)
        return cmd

    def ack(self, done: Iterable[Task]) -> None:
        """Acknowledges finished tasks in one round trip. On an exception
        they are still held (those Redis had already removed are not)."""
        done = list(done)
        try:
            self.ack_and_take(done, 0)
        except Refused:
            raise

    def dead_letter(self, task: Task, entry: bytes) -> None:
        """Moves a held task to ``{ns}:dead`` as entry (see deadletter.py),
        in one step with its removal from the in-flight list. On an
        exception it is still held, unless Redis had done it."""
        self._ready()
        if id(task) not in self._held:
            return
        try:
            r = self._send((b"EVAL", _DEAD, 3, self.dead, self.inflight, self.attempts, entry, task.data,
                            fingerprint(task.data)))[0]
        except Lost:
            self._unsure = True
            self._doubt.append(task)
            raise
        if isinstance(r, ResponseError):
            raise Refused(_error_text("dead letter", r))
        self._held.pop(id(task), None)

    def leave(self) -> None:
        """Puts every task still held (not started) back at the front of the
        queue and deregisters, in one script: slotd moves the slots at once.
        Stop the heartbeat first, or it registers the worker again."""
        try:
            self._ready()
        except SlotdError:
            pass        # leaving gives everything back anyway
        for attempt in range(2):
            try:
                r = self._send((b"EVAL", _LEAVE, 4, self.inflight, self.queue, self.workers, self.hb,
                                self.worker_id))[0]
            except Lost:
                if attempt == 1:
                    raise
                continue
            if isinstance(r, ResponseError):
                raise Refused(_error_text("leave", r))
            break
        self._held.clear()
        self._doubt = []
        self._unsure = False


def beat(send: Any, hb: bytes, workers: bytes, value: bytes, ttl_ms: int, worker_id: str) -> None:
    """One heartbeat through send (Link._send or the like)."""
    r = send((b"EVAL", _BEAT, 2, hb, workers, value, ttl_ms, worker_id))[0]
    if isinstance(r, ResponseError):
        raise Refused(_error_text("heartbeat", r))


class Heartbeat:
    """A thread that heartbeats every third of the TTL on its own connection
    (the ``client``'s), until :meth:`stop`. Failures are logged once when
    they start (then once a minute) and once when they end."""

    def __init__(self, link: Link, client: "redis.Redis") -> None:
        self._link = link
        self._client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slotd-heartbeat:" + link.worker_id,
                                        daemon=True)
        #: Heartbeats failed in a row.
        self.failures = 0

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def _send(self, *cmds: Sequence[Any]) -> List[Any]:
        if self._conn is None:
            self._conn = _get_connection(self._client)
        return _exchange(self._conn, cmds)

    def _run(self) -> None:
        import time
        lk = self._link
        self._conn = None
        period = lk.heartbeat_ttl_ms / 3000.0
        said_at = 0.0
        started = 0.0
        while not self._stop.is_set():
            try:
                beat(self._send, lk.hb, lk.workers, lk.beat_value, lk.heartbeat_ttl_ms, lk.worker_id)
                if self.failures:
                    log.info("worker %s: heartbeat works again after %.1f s, %d failed", lk.worker_id,
                             time.monotonic() - started, self.failures)
                self.failures = 0
            except SlotdError as e:
                now = time.monotonic()
                if self.failures == 0:
                    started = said_at = now
                    log.warning("worker %s: heartbeat failed: %s; retrying every %d ms; slotd declares"
                                " this worker dead once its heartbeat is %d ms old", lk.worker_id, e,
                                lk.heartbeat_ttl_ms // 3, lk.heartbeat_ttl_ms)
                elif now - said_at >= 60:
                    said_at = now
                    log.warning("worker %s: heartbeat still failing (for %.0f s, %d failures): %s",
                                lk.worker_id, now - started, self.failures + 1, e)
                self.failures += 1
            self._stop.wait(period)
        if self._conn is not None:
            self._conn.disconnect()
        self._client.close()

    def stop(self) -> None:
        """Stops the thread and waits for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
