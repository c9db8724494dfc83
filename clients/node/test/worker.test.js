"use strict";
// The Worker against a real slotd and redis-server: order per key under
// concurrency, kill -9, retries then dead letter, graceful leave, a join with
// a fenced handoff, lost replies, refused acknowledgements, the producer.
const test = require("node:test");
const assert = require("node:assert/strict");
const Redis = require("ioredis");
const slotd = require("..");
const { NS, checkOrder, makeTasks, sleep, stopProc, waitUntil, withEnv } = require("./helpers");

const ids = (tasks) => tasks.map((t) => JSON.parse(t.data).id);

test("order per key under concurrency", async () => {
  await withEnv(async (env) => {
    await env.startSlotd();
    env.startWorker("a", "--concurrency", "8", "--sleep-ms", "1");
    env.startWorker("b", "--concurrency", "3", "--sleep-ms", "1");
    await env.waitOwners(["a", "b"]);
    const n = 3000;
    await env.push(makeTasks(n, 40));
    await env.waitAllDone(40000);
    const runs = checkOrder(env.records(), n);
    assert.deepEqual([...new Set(runs.values())], [1], "a task ran twice");
    assert.ok(env.records().some((r) => r[0] === "a") && env.records().some((r) => r[0] === "b"));
    for (const id of ["a", "b"]) {
      assert.equal(await stopProc(env.workers[id]), 0);
      assert.match(env.workerText(id), /exited cleanly/);
    }
    await waitUntil(() => env.slotdText().includes("worker b left"), 5000, "b to leave");
  });
});

test("kill -9 loses nothing and re-runs only what was held", async () => {
  await withEnv(async (env) => {
    await env.startSlotd();
    for (const id of ["a", "b", "c"]) env.startWorker(id, "--concurrency", "4", "--sleep-ms", "2", "--prefetch", "8");
    await env.waitOwners(["a", "b", "c"]);
    const n = 2400;
    await env.push(makeTasks(n, 60));
    await waitUntil(() => env.records().filter((r) => r[0] === "b").length >= 100, 20000, "b to run tasks");
    await stopProc(env.workers.b, "SIGKILL");
    await waitUntil(() => env.slotdText().includes("worker b died"), 10000, "slotd to declare b dead");
    await env.waitAllDone(40000);
    const records = env.records();
    const runs = checkOrder(records, n);
    const again = [...runs].filter(([, k]) => k > 1).map(([id]) => id);
    // Only tasks b held (at most its prefetch of 8) ran again or show the
    // attempt slotd counted for b's death: those it had started run twice.
    const held = new Set(records.filter((r) => r[3] === 2).map((r) => r[1]));
    assert.ok(held.size <= 8 && again.every((id) => held.has(id)), `${again} ${[...held]}`);
    assert.ok(records.every((r) => r[3] === 1 || r[3] === 2));
    const first = new Map();
    for (const [w, id, , attempt] of records) {
      if (first.has(id)) assert.ok(first.get(id) === "b" && attempt === 2 && w !== "b", `${id} ${first.get(id)} ${w} ${attempt}`);
      else first.set(id, w);
    }
  });
});

test("retries, then a dead letter with the stack", async () => {
  await withEnv(async (env) => {
    await env.startSlotd();
    env.startWorker("a", "--fail", "3,7,11:1,12:2", "--max-attempts", "3", "--concurrency", "2");
    await env.waitOwners(["a"]);
    await env.push(makeTasks(20, 5));
    await waitUntil(async () => (await env.r.llen(env.key("dead"))) === 2, 20000, "two dead letters");
    await env.waitAllDone(20000);
    const records = env.records();
    const attempts = new Map();
    for (const [, id, , a] of records) attempts.set(id, [...(attempts.get(id) || []), a]);
    assert.deepEqual(attempts.get(3), [1, 2, 3]);
    assert.deepEqual(attempts.get(7), [1, 2, 3]);
    assert.deepEqual(attempts.get(11), [1, 2]);
    assert.deepEqual(attempts.get(12), [1, 2, 3]);
    for (let i = 0; i < 20; i++) if (![3, 7, 11, 12].includes(i)) assert.deepEqual(attempts.get(i), [1]);
    const dead = (await env.r.lrangeBuffer(env.key("dead"), 0, -1)).map(slotd.parseEntry);
    assert.deepEqual(dead.map((d) => JSON.parse(d.task).id).sort(), [3, 7]);
    for (const d of dead) {
      const id = JSON.parse(d.task).id;
      assert.equal(d.reason.toString(), "failed");
      assert.equal(typeof d.at_ms, "number");
      const detail = d.detail.toString();
      assert.ok(detail.startsWith(`Error: task ${id} fails on attempt 3 after 3 attempts; stack: Error: task ${id} fails`), detail);
      assert.match(detail, /worker-main\.js:\d+/);
    }
    assert.match(env.workerText("a"), /dead-lettered: Error: task 3 fails on attempt 3 after 3 attempts/);
    checkOrder(records, 20);
    assert.equal(await env.r.hlen(env.key("attempts")), 0);
  });
});

test("a graceful leave finishes what runs and gives back the rest in order", async () => {
  await withEnv(async (env) => {
    await env.startSlotd();
    env.startWorker("a", "--concurrency", "4", "--sleep-ms", "30", "--prefetch", "32");
    env.startWorker("b", "--concurrency", "4", "--sleep-ms", "5");
    await env.waitOwners(["a", "b"]);
    const n = 600;
    await env.push(makeTasks(n, 30));
    await waitUntil(async () => (await env.r.llen(env.key("inflight:a"))) >= 16, 10000, "a to hold tasks");
    const t0 = Date.now();
    assert.equal(await stopProc(env.workers.a), 0);
    assert.ok(Date.now() - t0 < 2000);
    assert.match(env.workerText("a"), /worker a left/);
    assert.match(env.workerText("a"), /exited cleanly/);
    await waitUntil(() => env.slotdText().includes("worker a left (deregistered)"), 2000, "slotd to see a leave");
    await env.waitAllDone(30000);
    const runs = checkOrder(env.records(), n);
    assert.deepEqual([...new Set(runs.values())], [1], "a graceful leave re-ran a task");
  });
});

test("a join with a fenced handoff", async () => {
  await withEnv(async (env) => {
    await env.startSlotd();
    env.startWorker("a", "--concurrency", "4", "--sleep-ms", "3", "--prefetch", "64");
    await env.waitOwners(["a"]);
    const n = 2000;
    await env.push(makeTasks(n, 50));
    await waitUntil(async () => (await env.r.llen(env.key("inflight:a"))) >= 32, 10000, "a to hold tasks");
    env.startWorker("b", "--concurrency", "4", "--sleep-ms", "1");
    await waitUntil(() => env.slotdText().includes("worker a handed off"), 10000, "a fence");
    await waitUntil(() => env.slotdText().includes("worker a has finished the tasks it held"), 20000, "the fence released");
    await env.waitAllDone(30000);
    const records = env.records();
    const runs = checkOrder(records, n);
    assert.deepEqual([...new Set(runs.values())], [1], "a join re-ran a task");
    assert.ok(records.some((r) => r[0] === "b"));
    // One worker at a time per key: a key that moved ran on a, then on b only.
    const seq = new Map();
    for (const [w, , key] of records) {
      const s = seq.get(key) || [];
      if (s[s.length - 1] !== w) s.push(w);
      seq.set(key, s);
    }
    for (const [key, s] of seq) assert.ok(s.length <= 2, `${key}: ${s}`);
  });
});

test("lost replies lose nothing and run nothing twice", async () => {
  await withEnv(async (env) => {
    await env.startSlotd();
    env.startWorker("a", "--concurrency", "2", "--prefetch", "16");
    env.startWorker("b", "--prefetch", "4");
    await env.waitOwners(["a", "b"]);
    let stop = false;
    let kills = 0;
    const killer = (async () => {
      const r = new Redis({ port: env.port });
      while (!stop) {
        const list = await r.client("LIST");
        for (const line of list.split("\n")) {
          const m = /id=(\d+) .*name=slotd-worker:(a|b) /.exec(line);
          if (m) {
            try {
              await r.client("KILL", "ID", m[1]);
              kills++;
            } catch {
              // gone already
            }
          }
        }
        await sleep(10);
      }
      r.disconnect();
    })();
    const n = 4000;
    try {
      for (let i = 0; i < n; i += 200) {
        await env.push(makeTasks(200, 25, i));
        await sleep(20);
      }
      await waitUntil(async () => (await env.outstanding()) < n / 4, 30000, "progress");
    } finally {
      stop = true;
      await killer;
    }
    await env.waitAllDone(30000);
    assert.ok(kills >= 20, `${kills} kills`);
    const runs = checkOrder(env.records(), n);
    assert.deepEqual([...new Set(runs.values())], [1], "a task ran twice");
  });
});

test("a refused ack keeps the tasks held", async () => {
  await withEnv(async (env) => {
    const r = env.r;
    await r.lpush(env.key("queue:w"), ...[0, 1, 2, 3, 4].map((i) => `{"key":"k","id":${i}}`));
    const client = new Redis({ port: env.port, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false });
    const link = new slotd.Link(client, { namespace: NS, workerId: "w", prefetch: 8 });
    await link.register();
    const got = await link.take(8);
    assert.deepEqual(ids(got), [0, 1, 2, 3, 4]);
    await r.set(env.key("attempts"), "not a hash");
    await assert.rejects(link.ack(got), (e) => e instanceof slotd.Refused && /WRONGTYPE/.test(e.message) && /attempts/.test(e.message));
    assert.equal(link.held, 5);
    assert.equal(await r.llen(env.key("inflight:w")), 5);
    await r.lpush(env.key("queue:w"), ...[5, 6, 7, 8, 9].map((i) => `{"key":"k","id":${i}}`));
    await assert.rejects(link.ackAndTake(got, 8), (e) => e instanceof slotd.Refused && e.taken.length === 0);
    assert.equal(link.held, 5);
    await r.del(env.key("attempts"));
    // Right after a refused ack, a take counts the tasks acknowledged with it
    // as still held: the worker never holds more than its prefetch.
    const more = await link.ackAndTake(got, 8);
    assert.deepEqual(ids(more), [5, 6, 7]);
    assert.equal(link.held, 3);
    await link.leave();
    assert.equal(await r.llen(env.key("queue:w")), 5);
    assert.equal(await r.llen(env.key("inflight:w")), 0);
    link.close();
  });
});

test("a lost take is given back in order", async () => {
  await withEnv(async (env) => {
    const r = env.r;
    await r.lpush(env.key("queue:w"), ...Array.from({ length: 10 }, (_, i) => `{"key":"k","id":${i}}`));
    const client = new Redis({ port: env.port, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false });
    const link = new slotd.Link(client, { namespace: NS, workerId: "w", prefetch: 16 });
    await link.register();
    const held = await link.take(3);
    // What a take whose reply was lost does: move 4 more, unknown to the link.
    for (let i = 0; i < 4; i++) await r.lmove(env.key("queue:w"), env.key("inflight:w"), "RIGHT", "LEFT");
    link._unsure = true;
    await link.ack(held.slice(0, 1));
    assert.deepEqual(await r.lrange(env.key("inflight:w"), 0, -1), [held[2].text, held[1].text]);
    assert.deepEqual((await r.lrange(env.key("queue:w"), 0, -1)).reverse().map((x) => JSON.parse(x).id), [3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(ids(await link.take(2)), [3, 4]);
    link.close();
  });
});

test("the producer pushes in order", async () => {
  await withEnv(async (env) => {
    const p = new slotd.Producer({ config: env.conf });
    assert.equal(await p.push({ op: "x" }, "user:1"), 1);
    assert.equal(await p.push(Buffer.from('{"key":"b"}')), 2);
    assert.equal(await p.pushMany(Array.from({ length: 2500 }, (_, i) => ({ key: "c", i }))), 2500);
    const items = await env.r.lrange(env.key("intake"), 0, -1);
    assert.deepEqual(JSON.parse(items[items.length - 1]), { op: "x", key: "user:1" });
    assert.equal(items[items.length - 2], '{"key":"b"}');
    assert.deepEqual(items.slice(0, -2).reverse().map((x) => JSON.parse(x).i), Array.from({ length: 2500 }, (_, i) => i));
    p.close();
  });
});

test("the producer pushes each task onto its shard's intake, in order per key", async () => {
  await withEnv(async (env) => {
    env.writeConf("shards: 3\n");
    const p = new slotd.Producer({ config: env.conf });
    assert.equal(p.config.shards, 3);
    assert.deepEqual(p.intakes, [0, 1, 2].map((i) => `{${NS}#${i}}:intake`));
    // Keys at the edges of the shards' ranges (CLUSTER KEYSLOT: 0, 5461, 5462, 10922, 10923, 16383).
    const edges = [["k596", 0], ["k13535", 0], ["k12922", 1], ["k12284", 1], ["k69207", 2], ["k10322", 2]];
    for (const [key, shard] of edges) {
      assert.equal(p.shardOf({ n: -1 }, key), shard, key);
      const before = await env.r.llen(p.intakes[shard]);
      assert.equal(await p.push({ n: -1 }, key), before + 1);
    }
    const bad = ['{"key":', '{"id":"k10322"}', "[1]"]; // shard 0's slotd dead-letters them
    for (const t of bad) {
      assert.equal(p.shardOf(t), 0, t);
      await p.push(t);
    }
    const tasks = Array.from({ length: 2500 }, (_, i) => ({ key: edges[i % 6][0], i }));
    assert.equal(await p.pushMany([...tasks, bad[0]]), 2501);
    for (let shard = 0; shard < 3; shard++) {
      const keys = edges.filter(([, s]) => s === shard).map(([k]) => k);
      const last = {};
      for (const x of (await env.r.lrange(p.intakes[shard], 0, -1)).reverse()) {
        if (bad.includes(x)) {
          assert.equal(shard, 0);
          continue;
        }
        const t = JSON.parse(x);
        assert.ok(keys.includes(t.key), `${x} on shard ${shard}`);
        const n = t.i ?? -1;
        assert.ok(n > (last[t.key] ?? -2), `out of order: ${x}`);
        last[t.key] = n;
      }
      assert.deepEqual(Object.keys(last).sort(), keys.sort());
    }
    assert.equal(await env.r.llen(p.intakes[0]), 2 + 3 + 2 * 417 + 1); // i % 6 in (0, 1)
    let total = 0;
    for (const k of p.intakes) total += await env.r.llen(k);
    assert.equal(total, 6 + 3 + 2501);
    assert.equal(await env.r.llen(env.key("intake")), 0);
    p.close();
  });
});

test("a restart recovers the in-flight list", async () => {
  await withEnv(async (env) => {
    const r = env.r;
    await r.lpush(env.key("inflight:w"), '{"key":"k","id":1}', '{"key":"k","id":2}');
    await r.lpush(env.key("queue:w"), '{"key":"k","id":3}');
    const seen = [];
    const w = new slotd.Worker(async (t) => {
      seen.push([t.json.id, t.attempt]);
      if (seen.length === 3) w.stop();
    }, { id: "w", port: env.port, namespace: NS, heartbeatTtlMs: 1000, handleSignals: false, logLevel: "warn" });
    await w.run();
    assert.deepEqual(seen, [[1, 2], [2, 2], [3, 1]]);
    assert.equal(await r.hlen(env.key("attempts")), 0);
    assert.equal(await r.sismember(env.key("workers"), "w"), 0);
  });
});

test("the master through Redis Sentinel", async () => {
  await withEnv(async (env) => {
    // redis.port points nowhere: only the sentinel can tell where Redis is.
    const sport = await env.startSentinel("jobs");
    const conf = `${env.dir}/sentinel.yaml`;
    require("fs").writeFileSync(conf, `redis:\n  port: 1\n  sentinels: "127.0.0.1:${sport}"\n  sentinel_master: jobs\n` +
      `namespace: ${NS}\nworkers:\n  heartbeat_ttl_ms: 1000\nlog:\n  level: warn\n`);
    const p = new slotd.Producer({ config: conf });
    await p.client.lpush(env.key("queue:s"), ...[0, 1, 2].map((i) => `{"key":"k","id":${i}}`));
    const seen = [];
    const w = new slotd.Worker(async (t) => {
      seen.push(t.json.id);
      if (seen.length === 3) w.stop();
    }, { id: "s", config: conf, handleSignals: false });
    await w.run();
    assert.deepEqual(seen, [0, 1, 2]);
    assert.equal(await env.r.llen(env.key("inflight:s")), 0);
    p.close();
  });
});
