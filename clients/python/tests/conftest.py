"""Fixtures: a private redis-server and a real slotd (build/slotd) on free
loopback ports in temp dirs, stopped by their pids; worker processes
(tests/pyworker.py) that log each task they run to one shared file.

Never touches a Redis it did not start.
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import pytest
import redis

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(PKG))
sys.path.insert(0, PKG)

NS = "t"
PYTHON = "/usr/bin/python3"


def build_dir() -> str:
    b = os.environ.get("BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


def stop_pid(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> Optional[int]:
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


class Env:
    """A redis-server and (once started) slotd, in one temp dir."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="slotd-py-")
        self.port = 0
        self.redis_proc: Optional[subprocess.Popen] = None
        self.slotd_proc: Optional[subprocess.Popen] = None
        self.shard_procs: List[subprocess.Popen] = []
        self.workers: Dict[str, subprocess.Popen] = {}
        self.conf = os.path.join(self.dir, "slotd.yaml")
        self.slotd_log = os.path.join(self.dir, "slotd.log")
        self.tasks_log = os.path.join(self.dir, "tasks.log")
        self.r: Optional[redis.Redis] = None

    def start_redis(self) -> None:
        for _ in range(5):
            self.port = free_port()
            with open(os.path.join(self.dir, "redis.conf"), "w") as f:
                f.write("port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %s\nlogfile %s/redis.log\n"
                        % (self.port, self.dir, self.dir))
            self.redis_proc = subprocess.Popen(["redis-server", os.path.join(self.dir, "redis.conf")],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.r = redis.Redis(port=self.port)
            end = time.monotonic() + 10
            while time.monotonic() < end and self.redis_proc.poll() is None:
                try:
                    if self.r.ping():
                        return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.02)
            stop_pid(self.redis_proc, signal.SIGKILL)
        raise RuntimeError("redis-server did not start")

    def start_sentinel(self, master: str) -> int:
        """A redis-server in sentinel mode watching this Redis as master; its port."""
        port = free_port()
        path = os.path.join(self.dir, "sentinel.conf")
        with open(path, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\n"
                    % (port, self.dir, master, self.port))
        p = subprocess.Popen(["redis-server", path, "--sentinel"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.workers["sentinel"] = p
        s = redis.Redis(port=port)
        wait_until(lambda: _answers(s, master), 10, "the sentinel")
        return port

    def write_conf(self, extra: str = "") -> None:
        with open(self.conf, "w") as f:
            f.write("redis:\n  port: %d\n  reconnect_min_ms: 20\n  reconnect_max_ms: 200\n"
                    "namespace: %s\nhttp:\n  listen: \"\"\nworkers:\n  check_interval_ms: 100\n"
                    "  heartbeat_ttl_ms: 1000\n%s" % (self.port, NS, extra))

    def start_slotd(self) -> None:
        log = open(self.slotd_log, "a")
        self.slotd_proc = subprocess.Popen([os.path.join(build_dir(), "slotd"), "-c", self.conf],
                                           stdout=log, stderr=log)
        log.close()
        wait_until(lambda: "slot table loaded" in self.slotd_text(), 10, "slotd to start")

    def start_shard_slotds(self, shards: int) -> None:
        """A slotd per shard (``slotd -s i``), logging to slotd-<i>.log."""
        for i in range(shards):
            log = open(os.path.join(self.dir, "slotd-%d.log" % i), "a")
            self.shard_procs.append(subprocess.Popen(
                [os.path.join(build_dir(), "slotd"), "-c", self.conf, "-s", str(i)], stdout=log, stderr=log))
            log.close()
        for i in range(shards):
            wait_until(lambda: "slot table loaded" in self.shard_text(i), 10, "slotd -s %d to start" % i)

    def shard_text(self, shard: int) -> str:
        try:
            with open(os.path.join(self.dir, "slotd-%d.log" % shard)) as f:
                return f.read()
        except OSError:
            return ""

    def shard_key(self, shard: int, name: str) -> str:
        return "{%s#%d}:%s" % (NS, shard, name)

    def slotd_text(self) -> str:
        try:
            with open(self.slotd_log) as f:
                return f.read()
        except OSError:
            return ""

    def key(self, name: str) -> str:
        return "{%s}:%s" % (NS, name)

    def start_worker(self, wid: str, *args: str) -> subprocess.Popen:
        log = open(os.path.join(self.dir, "worker-%s.log" % wid), "a")
        p = subprocess.Popen([PYTHON, os.path.join(HERE, "pyworker.py"), "--config", self.conf, "--id", wid,
                              "--log", self.tasks_log] + list(args), stdout=log, stderr=log,
                             start_new_session=True)
        log.close()
        self.workers[wid] = p
        return p

    def worker_text(self, wid: str) -> str:
        with open(os.path.join(self.dir, "worker-%s.log" % wid)) as f:
            return f.read()

    def wait_owners(self, ids: List[str], timeout: float = 10) -> None:
        assert self.r is not None
        wait_until(lambda: sorted(k.decode() for k in self.r.hkeys(self.key("slots"))) == sorted(ids),
                   timeout, "slots owned by %s" % ids)

    def push(self, tasks: List[bytes]) -> None:
        assert self.r is not None
        p = self.r.pipeline(transaction=False)
        for i in range(0, len(tasks), 1000):
            p.lpush(self.key("intake"), *tasks[i:i + 1000])
        p.execute()

    def outstanding(self) -> int:
        """Tasks not yet acknowledged: in the intake, queues, in-flight,
        fenced and forward lists, of the namespace or of any of its shards."""
        assert self.r is not None
        n = 0
        for k in self.r.scan_iter(match="{%s[}#]*" % NS, count=1000):
            if re.search(r"}:(intake|(queue|inflight|fenced):.+|forward:\d+)$", k.decode()):
                n += self.r.llen(k)
        return n

    def wait_all_done(self, timeout: float = 30) -> None:
        wait_until(lambda: self.outstanding() == 0, timeout, "every task acknowledged")

    def records(self) -> List[Tuple[str, int, str, int]]:
        """(worker, task id, key, attempt) per line of the shared log, in the order run."""
        out = []
        with open(self.tasks_log) as f:
            for line in f:
                wid, tid, key, attempt = line.split()
                out.append((wid, int(tid), key, int(attempt)))
        return out

    def close(self) -> None:
        for p in self.workers.values():
            stop_pid(p, signal.SIGKILL, 5)
        for p in [self.slotd_proc] + self.shard_procs:
            if p is not None:
                stop_pid(p, signal.SIGKILL, 5)
        if self.redis_proc is not None:
            stop_pid(self.redis_proc, signal.SIGKILL, 5)
        if os.environ.get("SLOTD_KEEP_TEST_DIRS"):
            sys.stderr.write("kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _answers(s: redis.Redis, master: str) -> bool:
    try:
        return s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master) is not None
    except redis.exceptions.ConnectionError:
        return False


def make_tasks(n: int, keys: int, start: int = 0) -> List[bytes]:
    """Task i: {"id":i,"key":"user:<i % keys>"}; one key in 5 shares a hash tag."""
    out = []
    for i in range(start, start + n):
        k = i % keys
        key = "{grp:%d}.user:%d" % (k % 3, k) if k % 5 == 4 else "user:%d" % k
        out.append(('{"id":%d,"key":"%s"}' % (i, key)).encode())
    return out


def check_order(records: List[Tuple[str, int, str, int]], n: int, start: int = 0) -> Dict[int, int]:
    """Every task [start, start+n) ran; for each key, the first and the last
    run of each task are both in push order. Returns runs per task id."""
    runs: Dict[int, int] = collections.Counter(r[1] for r in records)
    missing = [i for i in range(start, start + n) if runs[i] == 0]
    assert not missing, "tasks never ran: %s" % missing[:20]
    by_key: Dict[str, List[int]] = collections.defaultdict(list)
    for _, tid, key, _ in records:
        by_key[key].append(tid)
    for key, ids in by_key.items():
        first = list(dict.fromkeys(ids))
        assert first == sorted(first), "key %s: first runs out of order: %s" % (key, first)
        last = list(reversed(list(dict.fromkeys(reversed(ids)))))
        assert last == sorted(last), "key %s: last runs out of order: %s" % (key, ids)
    return runs


@pytest.fixture
def env():
    e = Env()
    try:
        e.start_redis()
        e.write_conf()
        yield e
    finally:
        e.close()


class Cluster:
    """A Redis Cluster of three masters (no replicas) on loopback, in a temp
    dir; stopped by pids."""

    def __init__(self, nodes: int = 3) -> None:
        self.dir = tempfile.mkdtemp(prefix="slotd-pycluster-")
        self.procs: List[subprocess.Popen] = []
        self.ports: List[int] = []
        try:
            self._start(nodes)
        except BaseException:
            self.close()
            raise

    def _start(self, nodes: int) -> None:
        for i in range(nodes):
            d = os.path.join(self.dir, "n%d" % i)
            os.mkdir(d)
            port = free_port()
            while port + 10000 > 65535:      # the cluster bus is on port + 10000
                port = free_port()
            self.ports.append(port)
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--save", "",
                 "--appendonly", "no", "--dir", d, "--logfile", os.path.join(d, "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in self.ports:
            wait_until(lambda: self._pings(port), 10, "redis-server on %d" % port)
        out = subprocess.run(["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in self.ports]
                             + ["--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        for port in self.ports:
            wait_until(lambda: b"cluster_state:ok" in self.node(port).execute_command("CLUSTER", "INFO"),
                       20, "cluster_state:ok on %d" % port)

    @staticmethod
    def _pings(port: int) -> bool:
        try:
            return bool(redis.Redis(port=port).ping())
        except redis.exceptions.ConnectionError:
            return False

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port)

    def seeds(self) -> str:
        return ",".join("127.0.0.1:%d" % p for p in self.ports)

    def master_of(self, slot: int, port: Optional[int] = None) -> int:
        """The port of the master of slot, as the node on port (or the first) says."""
        for lo, hi, m, *_ in self.node(port or self.ports[0]).execute_command("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return int(m[1])
        raise AssertionError("nobody serves slot %d" % slot)

    def on(self, key: str) -> redis.Redis:
        """A client of the master of key's slot."""
        from slotd.keyslot import keyslot
        return self.node(self.master_of(keyslot(key)))

    def node_id(self, port: int) -> str:
        return self.node(port).execute_command("CLUSTER", "MYID").decode()

    def migrate(self, slot: int, to: int) -> None:
        """Moves slot and its keys to the master on port to, as
        tests/integration/test_cluster.c's migrate_slot does."""
        frm = self.master_of(slot)
        s, d = self.node(frm), self.node(to)
        src, dst = self.node_id(frm), self.node_id(to)
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst)
        while True:
            keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
            for k in keys:
                s.execute_command("MIGRATE", "127.0.0.1", to, k, 0, 5000, "REPLACE")
            if not keys:
                break
        d.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst)
        s.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst)
        for port in self.ports:
            self.node(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst)
        for port in self.ports:
            wait_until(lambda: self.master_of(slot, port) == to, 10, "node %d to see slot %d moved" % (port, slot))

    def close(self) -> None:
        for p in self.procs:
            stop_pid(p, signal.SIGKILL, 5)
        if os.environ.get("SLOTD_KEEP_TEST_DIRS"):
            sys.stderr.write("kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
