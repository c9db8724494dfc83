"""The Worker and the Producer on a Redis Cluster (redis.cluster_seeds):
three real masters on loopback, a namespace in two shards whose slots are
on two different masters, a slotd per shard. The tasks the Producer pushed
to each shard's master run once and each key's in order; then shard 1's
slot migrates to the third master, while the worker is idle or while it is
busy with the shard's tasks, and every task, those pushed after (to the new
master) too, runs once, in order."""
from __future__ import annotations

import logging
import os
import re
import threading

import pytest
import redis

from conftest import Cluster, Env, check_order, free_port, make_tasks, wait_until

import slotd
from slotd.keyslot import keyslot

SHARDS = 2


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.close()


def pick_namespace(c: Cluster) -> str:
    """A namespace whose two shards' slots are on two different masters."""
    for i in range(100):
        ns = "c%d" % i
        if c.master_of(keyslot("{%s#0}" % ns)) != c.master_of(keyslot("{%s#1}" % ns)):
            return ns
    raise AssertionError("no namespace found")


def all_ran(env: Env, ids: range) -> bool:
    try:
        return set(ids) <= {r[1] for r in env.records()}
    except OSError:
        return False


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_worker_and_producer_in_two_shards_on_two_masters_and_a_migrated_shard(cluster, busy):
    ns = pick_namespace(cluster)
    slots = [keyslot("{%s#%d}" % (ns, i)) for i in range(SHARDS)]
    masters = [cluster.master_of(s) for s in slots]
    env = Env()
    try:
        # The first seed is down: the next ones are asked.
        seeds = "127.0.0.1:%d,%s" % (free_port(), cluster.seeds())
        with open(env.conf, "w") as f:
            f.write("redis:\n  cluster_seeds: \"%s\"\n  reconnect_min_ms: 20\n  reconnect_max_ms: 200\n"
                    "namespace: %s\nshards: %d\nhttp:\n  listen: \"\"\nworkers:\n  check_interval_ms: 100\n"
                    "  heartbeat_ttl_ms: 1000\n" % (seeds, ns, SHARDS))
        env.start_shard_slotds(SHARDS)
        env.start_worker("a", "--prefetch", "8", *(("--sleep-ms", "2") if busy else ()))
        for i in range(SHARDS):
            node = cluster.node(masters[i])
            wait_until(lambda: node.hkeys("{%s#%d}:slots" % (ns, i)) == [b"a"], 10,
                       "worker a to own the slots of shard %d" % i)
        p = slotd.Producer(config=env.conf)
        assert len(p.config.cluster_seeds) == 4 and len(p.clients) == SHARDS
        n = 600
        tasks = make_tasks(n, 30)
        assert {p.shard_of(t) for t in tasks} == {0, 1}
        assert p.push_many(tasks) == n
        if busy:
            wait_until(lambda: len(env.records()) >= 50, 15, "tasks to run")
        else:
            wait_until(lambda: all_ran(env, range(n)), 15, "every task to run")
            # Each shard's master has its keys (a cluster node holds only its slots').
            for i in range(SHARDS):
                assert cluster.node(masters[i]).sismember("{%s#%d}:workers" % (ns, i), "a")

        # Shard 1's slot (its keys: the intake, the worker's queue and in-flight
        # list, ...) moves to the third master, the worker idle or not.
        third = next(port for port in cluster.ports if port not in masters)
        cluster.migrate(slots[1], third)
        if busy:
            assert not all_ran(env, range(n)), "the worker was done before the migration"
        assert cluster.node(third).sismember("{%s#1}:workers" % ns, "a")
        # The producer's shard 1 connection meets MOVED: the push fails unapplied
        # (redis.ConnectionError), and the next one goes to the new master.
        more = make_tasks(300, 30, start=n)
        one = next(t for t in more if p.shard_of(t) == 1)
        with pytest.raises(redis.ConnectionError, match="MOVED"):
            p.push(one)
        assert p.push_many(more) == len(more)
        wait_until(lambda: all_ran(env, range(n + len(more))), 15, "every task pushed after the move to run")
        runs = check_order(env.records(), n + len(more))
        assert set(runs.values()) == {1}, "a task ran twice"
        assert cluster.node(third).llen("{%s#1}:intake" % ns) == 0
        # Met by its shard 1 link, which reconnected (busy: perhaps TRYAGAIN or ASK, mid-migration).
        assert re.search("MOVED|TRYAGAIN|ASK", env.worker_text("a"))
        assert "moved: 127.0.0.1:%d -> 127.0.0.1:%d" % (masters[1], third) in env.shard_text(1)
        p.close()
    finally:
        if os.environ.get("SLOTD_KEEP_TEST_DIRS"):
            print(env.dir)
        env.close()


def test_cluster_seeds_are_checked():
    with pytest.raises(slotd.ConfigError, match="exclude"):
        slotd.Worker(lambda t: None, id="w", cluster_seeds="127.0.0.1:7000", sentinels="127.0.0.1:26379",
                     sentinel_master="m")
    with pytest.raises(slotd.ConfigError, match="db 0"):
        slotd.Producer(cluster_seeds="127.0.0.1:7000", db=1)
    with pytest.raises(slotd.ConfigError, match="cluster_seeds"):
        slotd.Producer(cluster_seeds="nowhere")


def test_no_seed_answering_is_retried_and_the_worker_stops_cleanly(caplog):
    caplog.set_level(logging.INFO, "slotd")
    w = slotd.Worker(lambda t: None, id="w", cluster_seeds="127.0.0.1:%d" % free_port(), connect_timeout_ms=100,
                     reconnect_min_ms=20, reconnect_max_ms=50, install_signal_handlers=False)
    threading.Timer(1.0, w.stop).start()
    w.run()
    assert "Redis Cluster: no master for slot %d" % slotd.keyslot("{slotd}") in caplog.text
