"""The Worker on a namespace in two shards (shards: 2), against a real
redis-server and a slotd per shard (slotd -s 0, slotd -s 1): two workers
serve both shards, the tasks the Producer pushed to each task's shard run
once and each key's in order; a graceful leave deregisters from both
shards; kill -9 of one worker loses nothing; a task that fails its last
attempt is dead-lettered in its own shard; each shard's in-flight list is
recovered at start, and a shard that refuses waits alone."""
from __future__ import annotations

import collections
import signal

from conftest import check_order, make_tasks, stop_pid, wait_until

import slotd

SHARDS = 2


def start(env, *args: str) -> slotd.Producer:
    """Two slotds, workers a and b serving both shards; the producer."""
    env.write_conf("shards: %d\n" % SHARDS)
    env.start_shard_slotds(SHARDS)
    for wid in ("a", "b"):
        env.start_worker(wid, *args)
    for i in range(SHARDS):
        wait_until(lambda: sorted(k.decode() for k in env.r.hkeys(env.shard_key(i, "slots"))) == ["a", "b"],
                   10, "both workers to own slots of shard %d" % i)
    return slotd.Producer(config=env.conf)


def shard_of_key(p: slotd.Producer, records) -> dict:
    return {key: p.shard_of({"key": key}) for _, _, key, _ in records}


def test_two_workers_serve_both_shards_in_order_and_leave_both(env):
    p = start(env, "--concurrency", "4", "--sleep-ms", "1", "--prefetch", "8")
    n = 2000
    tasks = make_tasks(n, 40)
    assert p.push_many(tasks) == n
    assert {p.shard_of(t) for t in tasks} == {0, 1}
    env.wait_all_done(30)
    records = env.records()
    runs = check_order(records, n)
    assert set(runs.values()) == {1}, "a task ran twice"
    # Each worker ran tasks of both shards.
    shard = shard_of_key(p, records)
    served = collections.defaultdict(set)
    for wid, _, key, _ in records:
        served[wid].add(shard[key])
    assert served == {"a": {0, 1}, "b": {0, 1}}, served
    for i in range(SHARDS):
        assert sorted(m.decode() for m in env.r.smembers(env.shard_key(i, "workers"))) == ["a", "b"]
    assert stop_pid(env.workers["a"]) == 0
    text = env.worker_text("a")
    assert "exited cleanly" in text and "left shard 0" in text and "left shard 1" in text
    for i in range(SHARDS):
        wait_until(lambda: "worker a left (deregistered)" in env.shard_text(i), 2, "shard %d to see a leave" % i)
        assert [m.decode() for m in env.r.smembers(env.shard_key(i, "workers"))] == ["b"]
    assert stop_pid(env.workers["b"]) == 0
    for i in range(SHARDS):
        assert env.r.scard(env.shard_key(i, "workers")) == 0
        assert env.r.exists(env.shard_key(i, "hb:a"), env.shard_key(i, "hb:b")) == 0
    assert env.r.llen(env.key("intake")) == 0 and not env.r.exists(env.key("workers"))
    p.close()


def test_kill9_of_one_worker_loses_nothing_in_either_shard(env):
    p = start(env, "--concurrency", "4", "--sleep-ms", "2", "--prefetch", "8")
    n = 1600
    p.push_many(make_tasks(n, 60))
    wait_until(lambda: sum(1 for r in env.records() if r[0] == "b") >= 100, 20, "b to run tasks")
    env.workers["b"].send_signal(signal.SIGKILL)
    env.workers["b"].wait()
    for i in range(SHARDS):
        wait_until(lambda: "worker b died" in env.shard_text(i), 10, "shard %d to declare b dead" % i)
    env.wait_all_done(30)
    records = env.records()
    runs = check_order(records, n)
    # Only tasks b held (its prefetch of 8 across both shards) ran again or
    # show the attempt a shard's slotd counted for b's death.
    held = {tid for _, tid, _, attempt in records if attempt == 2}
    again = {tid for tid, k in runs.items() if k > 1}
    assert len(held) <= 8 and again <= held, (again, held)
    assert all(a in (1, 2) for _, _, _, a in records)
    for tid in again:
        assert [r[0] for r in records if r[1] == tid][0] == "b"
    assert stop_pid(env.workers["a"]) == 0
    for i in range(SHARDS):
        assert env.r.scard(env.shard_key(i, "workers")) == 0
    p.close()


def test_dead_letters_go_to_the_tasks_shard(env):
    p = start(env, "--fail", "3,4,8", "--max-attempts", "2")
    tasks = make_tasks(20, 10)
    p.push_many(tasks)
    wait_until(lambda: sum(env.r.llen(env.shard_key(i, "dead")) for i in range(SHARDS)) == 3, 20,
               "three dead letters")
    env.wait_all_done(20)
    for i in range(SHARDS):
        dead = [slotd.parse_entry(e) for e in env.r.lrange(env.shard_key(i, "dead"), 0, -1)]
        assert all(p.shard_of(d["task"]) == i and d["reason"] == b"failed" for d in dead), (i, dead)
    assert {p.shard_of(tasks[t]) for t in (3, 4, 8)} == {0, 1}
    assert not env.r.exists(env.key("dead"))
    check_order(env.records(), 20)
    p.close()


def test_each_shard_recovers_its_in_flight_list_and_a_refusing_shard_waits_alone(env, caplog):
    # No slotd: the worker alone against the shards' lists. Shard 1 refuses
    # (a key of the wrong type) until shard 0's tasks have run.
    r = env.r
    r.lpush(env.shard_key(0, "inflight:w"), b'{"key":"k","id":1}', b'{"key":"k","id":2}')
    r.lpush(env.shard_key(1, "inflight:w"), b'{"key":"j","id":3}')
    r.lpush(env.shard_key(1, "queue:w"), b'{"key":"j","id":4}')
    r.set(env.shard_key(1, "attempts"), "not a hash")
    seen = []

    def handle(t: slotd.Task) -> None:
        seen.append((t.json["id"], t.attempt))
        if len(seen) == 2:
            r.delete(env.shard_key(1, "attempts"))
        if len(seen) == 4:
            w.stop()

    w = slotd.Worker(handle, id="w", port=env.port, namespace="t", shards=SHARDS, heartbeat_ttl_ms=1000,
                     reconnect_min_ms=20, reconnect_max_ms=100)
    w.run()
    assert seen == [(1, 2), (2, 2), (3, 2), (4, 1)]
    assert "shard 1): recovering the in-flight list refused: WRONGTYPE" in caplog.text
    for i in range(SHARDS):
        assert r.hlen(env.shard_key(i, "attempts")) == 0
        assert r.scard(env.shard_key(i, "workers")) == 0
        assert r.llen(env.shard_key(i, "inflight:w")) == 0
    assert w.acked == 4
