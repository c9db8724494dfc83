"""The Worker against a real slotd and redis-server: order per key under
parallelism, kill -9, retries then dead letter, graceful leave, a join with
a fenced handoff, lost replies, refused acknowledgements, the producer."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import signal
import threading
import time

import redis

from conftest import NS, PYTHON, ROOT, check_order, make_tasks, stop_pid, wait_until

import slotd


def test_order_per_key_under_parallelism(env):
    env.start_slotd()
    env.start_worker("a", "--concurrency", "8", "--sleep-ms", "1")
    env.start_worker("b", "--concurrency", "4", "--pool", "processes", "--sleep-ms", "1")
    env.wait_owners(["a", "b"])
    n = 3000
    env.push(make_tasks(n, 40))
    env.wait_all_done(40)
    runs = check_order(env.records(), n)
    assert set(runs.values()) == {1}, "a task ran twice"
    by = collections.Counter(r[0] for r in env.records())
    assert by["a"] > 0 and by["b"] > 0
    # Parallel: tasks of different slots overlapped in time on one worker.
    for wid in ("a", "b"):
        assert stop_pid(env.workers[wid]) == 0
        assert "exited cleanly" in env.worker_text(wid)
    wait_until(lambda: "worker b left" in env.slotd_text(), 5, "b to leave")


def test_kill9_loses_nothing_and_reruns_only_what_was_held(env):
    env.start_slotd()
    for wid in ("a", "b", "c"):
        env.start_worker(wid, "--concurrency", "4", "--sleep-ms", "2", "--prefetch", "8")
    env.wait_owners(["a", "b", "c"])
    n = 2400
    env.push(make_tasks(n, 60))
    wait_until(lambda: sum(1 for r in env.records() if r[0] == "b") >= 100, 20, "b to run tasks")
    env.workers["b"].send_signal(signal.SIGKILL)
    env.workers["b"].wait()
    wait_until(lambda: "worker b died" in env.slotd_text(), 10, "slotd to declare b dead")
    env.wait_all_done(40)
    records = env.records()
    runs = check_order(records, n)
    again = {tid for tid, k in runs.items() if k > 1}
    # Only tasks b held (at most its prefetch of 8) ran again or show the
    # attempt slotd counted for b's death: those it had started run twice.
    held = {tid for _, tid, _, attempt in records if attempt == 2}
    assert len(held) <= 8 and again <= held, (again, held)
    assert all(a in (1, 2) for _, _, _, a in records)
    first = {}
    for wid, tid, _, attempt in records:
        if tid in first:
            assert first[tid] == "b" and attempt == 2 and wid != "b", (tid, first[tid], wid, attempt)
        else:
            first[tid] = wid


def test_retries_then_dead_letter(env):
    env.start_slotd()
    env.start_worker("a", "--fail", "3,7,11:1,12:2", "--max-attempts", "3", "--concurrency", "2")
    env.wait_owners(["a"])
    env.push(make_tasks(20, 5))
    # 3 and 7 fail every time: dead letters after 3 attempts; 11 fails once
    # and 12 twice, then they pass.
    wait_until(lambda: env.r.llen(env.key("dead")) == 2, 20, "two dead letters")
    env.wait_all_done(20)
    records = env.records()
    attempts = collections.defaultdict(list)
    for _, tid, _, attempt in records:
        attempts[tid].append(attempt)
    assert attempts[3] == attempts[7] == [1, 2, 3]
    assert attempts[11] == [1, 2] and attempts[12] == [1, 2, 3]
    assert all(attempts[i] == [1] for i in range(20) if i not in (3, 7, 11, 12))
    dead = [slotd.parse_entry(e) for e in env.r.lrange(env.key("dead"), 0, -1)]
    assert sorted(json.loads(d["task"])["id"] for d in dead) == [3, 7]
    for d in dead:
        tid = json.loads(d["task"])["id"]
        assert d["reason"] == b"failed" and isinstance(d["at_ms"], int)
        detail = d["detail"].decode()
        assert detail.startswith("RuntimeError: task %d fails on attempt 3 after 3 attempts; traceback: Traceback"
                                 % tid), detail
        assert 'pyworker.py", line' in detail and "in handle" in detail
    assert "dead-lettered: RuntimeError: task 3 fails on attempt 3 after 3 attempts" in env.worker_text("a")
    # A dead-lettered task does not hold up its key: the rest ran in order.
    check_order(records, 20)
    assert env.r.hlen(env.key("attempts")) == 0


def test_graceful_leave_finishes_and_gives_back_in_order(env):
    env.start_slotd()
    env.start_worker("a", "--concurrency", "4", "--sleep-ms", "30", "--prefetch", "32")
    env.start_worker("b", "--concurrency", "4", "--sleep-ms", "5")
    env.wait_owners(["a", "b"])
    n = 600
    env.push(make_tasks(n, 30))
    wait_until(lambda: env.r.llen(env.key("inflight:a")) >= 16, 10, "a to hold tasks")
    t0 = time.monotonic()
    assert stop_pid(env.workers["a"]) == 0
    left = time.monotonic() - t0
    assert "exited cleanly" in env.worker_text("a")
    assert "worker a left" in env.worker_text("a")
    # slotd moves its slots at once, not after the heartbeat TTL.
    wait_until(lambda: "worker a left (deregistered)" in env.slotd_text(), 2, "slotd to see a leave")
    assert left < 2
    env.wait_all_done(30)
    runs = check_order(env.records(), n)
    assert set(runs.values()) == {1}, "a graceful leave re-ran a task"


def test_join_with_a_fenced_handoff(env):
    env.start_slotd()
    env.start_worker("a", "--concurrency", "4", "--sleep-ms", "3", "--prefetch", "64")
    env.wait_owners(["a"])
    n = 2000
    env.push(make_tasks(n, 50))
    wait_until(lambda: env.r.llen(env.key("inflight:a")) >= 32, 10, "a to hold tasks")
    env.start_worker("b", "--concurrency", "4", "--sleep-ms", "1")
    wait_until(lambda: "worker a handed off" in env.slotd_text(), 10, "a fence")
    wait_until(lambda: "worker a has finished the tasks it held" in env.slotd_text(), 20, "the fence released")
    env.wait_all_done(30)
    records = env.records()
    runs = check_order(records, n)
    assert set(runs.values()) == {1}, "a join re-ran a task"
    assert any(r[0] == "b" for r in records)
    # One worker at a time per key: a key that moved ran on a, then on b only.
    per_key = collections.defaultdict(list)
    for wid, _, key, _ in records:
        if not per_key[key] or per_key[key][-1] != wid:
            per_key[key].append(wid)
    assert all(len(seq) <= 2 for seq in per_key.values()), per_key


def test_lost_replies_lose_nothing_and_run_nothing_twice(env):
    env.start_slotd()
    env.start_worker("a", "--concurrency", "2", "--prefetch", "16")
    env.start_worker("b", "--prefetch", "4")
    env.wait_owners(["a", "b"])
    stop = threading.Event()
    kills = [0]

    def killer():
        r = redis.Redis(port=env.port)
        while not stop.is_set():
            for wid in ("a", "b"):
                for c in r.client_list():
                    if c.get("name") == "slotd-worker:" + wid:
                        try:
                            r.execute_command("CLIENT", "KILL", "ID", c["id"])
                            kills[0] += 1
                        except redis.exceptions.ResponseError:
                            pass
            time.sleep(0.01)

    n = 4000
    th = threading.Thread(target=killer)
    th.start()
    try:
        for i in range(0, n, 200):
            env.push(make_tasks(200, 25, i))
            time.sleep(0.02)
        wait_until(lambda: env.outstanding() < n // 4, 30, "progress")
    finally:
        stop.set()
        th.join()
    env.wait_all_done(30)
    assert kills[0] >= 20, kills
    runs = check_order(env.records(), n)
    assert set(runs.values()) == {1}, [t for t, k in runs.items() if k > 1][:10]


def test_refused_ack_keeps_the_tasks_held(env):
    # The link alone, against Redis (no slotd): an ack refused leaves the
    # tasks held and in flight; once the cause is gone they are acknowledged.
    r = env.r
    r.lpush(env.key("queue:w"), *[b'{"key":"k","id":%d}' % i for i in range(5)])
    link = slotd.Link(redis.Redis(port=env.port), NS, "w", prefetch=8)
    link.register()
    got = link.take(8)
    assert [json.loads(t.data)["id"] for t in got] == [0, 1, 2, 3, 4]
    r.set(env.key("attempts"), "not a hash")
    try:
        link.ack(got)
        raise AssertionError("the ack went through")
    except slotd.Refused as e:
        assert "WRONGTYPE" in str(e) and "attempts" in str(e)
    assert link.held == 5 and r.llen(env.key("inflight:w")) == 5
    r.lpush(env.key("queue:w"), *[b'{"key":"k","id":%d}' % i for i in range(5, 10)])
    try:
        link.ack_and_take(got, 8)
        raise AssertionError("the ack went through")
    except slotd.Refused as e:
        assert e.taken == []
    assert link.held == 5 and r.llen(env.key("inflight:w")) == 5 and r.llen(env.key("queue:w")) == 5
    r.delete(env.key("attempts"))
    # Right after a refused ack, a take counts the tasks acknowledged with it
    # as still held: the worker never holds more than its prefetch.
    more = link.ack_and_take(got, 8)
    assert [json.loads(t.data)["id"] for t in more] == [5, 6, 7]
    assert link.held == 3 and r.llen(env.key("inflight:w")) == 3
    link.leave()
    assert r.llen(env.key("queue:w")) == 5 and r.llen(env.key("inflight:w")) == 0
    link.close()


def test_a_lost_take_is_given_back_in_order(env):
    # A take whose reply never came: the tasks it moved are given back to the
    # queue's tail, in order, before anything else; the held ones stay.
    r = env.r
    r.lpush(env.key("queue:w"), *[b'{"key":"k","id":%d}' % i for i in range(10)])
    link = slotd.Link(redis.Redis(port=env.port), NS, "w", prefetch=16)
    link.register()
    held = link.take(3)
    # What a take whose reply was lost does: move 4 more, unknown to the link.
    for _ in range(4):
        r.lmove(env.key("queue:w"), env.key("inflight:w"), "RIGHT", "LEFT")
    link._unsure = True
    link.ack(held[:1])
    assert r.lrange(env.key("inflight:w"), 0, -1) == [held[2].data, held[1].data]
    assert [json.loads(x)["id"] for x in reversed(r.lrange(env.key("queue:w"), 0, -1))] == list(range(3, 10))
    nxt = link.take(2)
    assert [json.loads(t.data)["id"] for t in nxt] == [3, 4]
    link.close()


def test_producer_pushes_in_order(env):
    p = slotd.Producer(config=env.conf)
    assert p.push({"op": "x"}, key="user:1") == 1
    assert p.push(b'{"key":"b"}') == 2
    assert p.push_many([{"key": "c", "i": i} for i in range(2500)]) == 2500
    items = env.r.lrange(env.key("intake"), 0, -1)
    assert json.loads(items[-1]) == {"op": "x", "key": "user:1"}
    assert items[-2] == b'{"key":"b"}'
    assert [json.loads(x)["i"] for x in reversed(items[:-2])] == list(range(2500))
    p.close()


# Keys at the edges of the shards' ranges for 3 shards: (key, CLUSTER KEYSLOT, shard).
EDGES3 = [("k596", 0, 0), ("k13535", 5461, 0), ("k12922", 5462, 1),
          ("k12284", 10922, 1), ("k69207", 10923, 2), ("k10322", 16383, 2)]


def test_producer_pushes_to_each_tasks_shard(env):
    env.write_conf("shards: 3\n")
    p = slotd.Producer(config=env.conf)
    assert p.config.shards == 3
    assert p.intakes == ["{%s#%d}:intake" % (NS, i) for i in range(3)]
    for key, _, shard in EDGES3:
        assert p.shard_of({"n": -1}, key=key) == shard
        before = env.r.llen(p.intakes[shard])
        assert p.push({"n": -1}, key=key) == before + 1
    bad = [b'{"key":', b'{"id":"k10322"}', b"[1]"]     # shard 0's slotd dead-letters them
    for t in bad:
        assert p.shard_of(t) == 0
        p.push(t)
    assert p.push_many([{"key": EDGES3[i % 6][0], "i": i} for i in range(2500)] + bad[:1]) == 2501
    for shard in range(3):
        keys = {k for k, _, s in EDGES3 if s == shard}
        last = {}
        for x in reversed(env.r.lrange(p.intakes[shard], 0, -1)):     # oldest first
            if x in bad:
                assert shard == 0
                continue
            t = json.loads(x)
            assert t["key"] in keys, (t, shard)
            n = t.get("i", -1)
            assert n > last.get(t["key"], -2), "out of order: %s" % t
            last[t["key"]] = n
        assert sorted(last) == sorted(keys)
    assert sum(env.r.llen(i) for i in p.intakes) == 6 + 3 + 2501
    assert env.r.llen(p.intakes[0]) == 2 + 3 + 2 * 417 + 1     # i % 6 in (0, 1)
    assert env.r.llen(env.key("intake")) == 0
    p.close()


def test_example_producer_pushes_to_each_tasks_shard(env):
    from slotd.producer import task_shard
    subprocess.run([PYTHON, os.path.join(ROOT, "examples", "producer.py"), "--port", str(env.port),
                    "--namespace", NS, "--shards", "3", "--count", "120", "--keys", "12"], check=True)
    env.write_conf("shards: 3\n")
    cfg = slotd.Producer(config=env.conf).config
    seen = 0
    for shard in range(3):
        last = {}
        for x in reversed(env.r.lrange("{%s#%d}:intake" % (NS, shard), 0, -1)):
            assert task_shard(x, cfg) == shard
            t = json.loads(x)
            assert t["seq"] > last.get(t["key"], -1)
            last[t["key"]] = t["seq"]
            seen += 1
    assert seen == 120


def test_restart_recovers_the_in_flight_list(env):
    r = env.r
    r.lpush(env.key("inflight:w"), b'{"key":"k","id":1}', b'{"key":"k","id":2}')
    r.lpush(env.key("queue:w"), b'{"key":"k","id":3}')
    seen = []
    w = slotd.Worker(lambda t: (seen.append((t.json["id"], t.attempt)), len(seen) == 3 and w.stop()),
                     id="w", port=env.port, namespace=NS, heartbeat_ttl_ms=1000)
    w.run()
    assert seen == [(1, 2), (2, 2), (3, 1)]
    assert r.hlen(env.key("attempts")) == 0
    assert r.sismember(env.key("workers"), "w") == 0


def test_the_master_through_redis_sentinel(env, tmp_path):
    # redis.port points nowhere: only the sentinel can tell where Redis is.
    sport = env.start_sentinel("jobs")
    conf = tmp_path / "sentinel.yaml"
    conf.write_text("redis:\n  port: 1\n  sentinels: \"127.0.0.1:%d\"\n  sentinel_master: jobs\n"
                    "namespace: %s\nworkers:\n  heartbeat_ttl_ms: 1000\n" % (sport, NS))
    p = slotd.Producer(config=str(conf))
    p.client.lpush(env.key("queue:s"), *[b'{"key":"k","id":%d}' % i for i in range(3)])
    seen = []
    w = slotd.Worker(lambda t: (seen.append(t.json["id"]), len(seen) == 3 and w.stop()), id="s", config=str(conf))
    w.run()
    assert seen == [0, 1, 2]
    assert env.r.llen(env.key("inflight:s")) == 0 and env.r.llen(env.key("queue:s")) == 0
    p.close()


def test_coroutine_handlers_are_awaited(env):
    import asyncio

    env.r.lpush(env.key("queue:w"), b'{"key":"k","id":1}', b'{"key":"k","id":2}')
    seen = []

    async def handle(t: slotd.Task) -> None:
        await asyncio.sleep(0.01)
        if t.attempt == 1 and t.json["id"] == 1:
            raise ValueError("once")
        seen.append((t.json["id"], t.attempt))
        if len(seen) == 2:
            w.stop()

    w = slotd.Worker(handle, id="w", port=env.port, namespace=NS, heartbeat_ttl_ms=1000, retry_min_ms=10)
    w.run()
    assert seen == [(1, 2), (2, 1)]
