"use strict";
// The Worker on a namespace in two shards (shards: 2), against a real
// redis-server and a slotd per shard (slotd -s 0, slotd -s 1): two workers
// serve both shards, the tasks the Producer pushed to each task's shard run
// once and each key's in order; a graceful leave deregisters from both
// shards; kill -9 of one worker loses nothing; a task that fails its last
// attempt is dead-lettered in its own shard; each shard's in-flight list is
// recovered at start, and a shard that refuses waits alone.
const test = require("node:test");
const assert = require("node:assert/strict");
const slotd = require("..");
const { checkOrder, makeTasks, stopProc, waitUntil, withEnv } = require("./helpers");

const SHARDS = 2;

/** Two slotds, workers a and b serving both shards; resolves to the producer. */
async function start(env, ...args) {
  env.writeConf(`shards: ${SHARDS}\n`);
  await env.startShardSlotds(SHARDS);
  for (const id of ["a", "b"]) env.startWorker(id, ...args);
  for (let i = 0; i < SHARDS; i++)
    await waitUntil(async () => (await env.r.hkeys(env.shardKey(i, "slots"))).sort().join(",") === "a,b", 10000,
      `both workers to own slots of shard ${i}`);
  return new slotd.Producer({ config: env.conf });
}

const members = async (env, i) => (await env.r.smembers(env.shardKey(i, "workers"))).sort();

test("two workers serve both shards, each key in order, and leave both", async () => {
  await withEnv(async (env) => {
    const p = await start(env, "--concurrency", "4", "--sleep-ms", "1", "--prefetch", "8");
    const n = 2000;
    const tasks = makeTasks(n, 40);
    assert.equal(await p.pushMany(tasks), n);
    assert.deepEqual([...new Set(tasks.map((t) => p.shardOf(t)))].sort(), [0, 1]);
    await env.waitAllDone(30000);
    const records = env.records();
    const runs = checkOrder(records, n);
    assert.deepEqual([...new Set(runs.values())], [1], "a task ran twice");
    // Each worker ran tasks of both shards.
    const served = { a: new Set(), b: new Set() };
    for (const [w, , key] of records) served[w].add(p.shardOf({ key }));
    assert.deepEqual([[...served.a].sort(), [...served.b].sort()], [[0, 1], [0, 1]]);
    for (let i = 0; i < SHARDS; i++) assert.deepEqual(await members(env, i), ["a", "b"]);
    assert.equal(await stopProc(env.workers.a), 0);
    const text = env.workerText("a");
    assert.match(text, /exited cleanly/);
    assert.match(text, /left shard 0/);
    assert.match(text, /left shard 1/);
    for (let i = 0; i < SHARDS; i++) {
      await waitUntil(() => env.shardText(i).includes("worker a left (deregistered)"), 2000, `shard ${i} to see a leave`);
      assert.deepEqual(await members(env, i), ["b"]);
    }
    assert.equal(await stopProc(env.workers.b), 0);
    for (let i = 0; i < SHARDS; i++) {
      assert.deepEqual(await members(env, i), []);
      assert.equal(await env.r.exists(env.shardKey(i, "hb:a"), env.shardKey(i, "hb:b")), 0);
    }
    assert.equal(await env.r.exists(env.key("workers"), env.key("intake")), 0);
    p.close();
  });
});

test("kill -9 of one worker loses nothing in either shard", async () => {
  await withEnv(async (env) => {
    const p = await start(env, "--concurrency", "4", "--sleep-ms", "2", "--prefetch", "8");
    const n = 1600;
    await p.pushMany(makeTasks(n, 60));
    await waitUntil(() => env.records().filter((r) => r[0] === "b").length >= 100, 20000, "b to run tasks");
    await stopProc(env.workers.b, "SIGKILL");
    for (let i = 0; i < SHARDS; i++)
      await waitUntil(() => env.shardText(i).includes("worker b died"), 10000, `shard ${i} to declare b dead`);
    await env.waitAllDone(30000);
    const records = env.records();
    const runs = checkOrder(records, n);
    // Only tasks b held (its prefetch of 8 across both shards) ran again or
    // show the attempt a shard's slotd counted for b's death.
    const held = new Set(records.filter((r) => r[3] === 2).map((r) => r[1]));
    const again = [...runs].filter(([, k]) => k > 1).map(([id]) => id);
    assert.ok(held.size <= 8 && again.every((id) => held.has(id)), `${again} ${[...held]}`);
    assert.ok(records.every((r) => r[3] === 1 || r[3] === 2));
    for (const id of again) assert.equal(records.find((r) => r[1] === id)[0], "b");
    assert.equal(await stopProc(env.workers.a), 0);
    for (let i = 0; i < SHARDS; i++) assert.deepEqual(await members(env, i), []);
    p.close();
  });
});

test("a task that fails its last attempt is dead-lettered in its own shard", async () => {
  await withEnv(async (env) => {
    const p = await start(env, "--fail", "3,4,8", "--max-attempts", "2");
    const tasks = makeTasks(20, 10);
    await p.pushMany(tasks);
    const dead = async (i) => (await env.r.lrangeBuffer(env.shardKey(i, "dead"), 0, -1)).map(slotd.parseEntry);
    await waitUntil(async () => (await dead(0)).length + (await dead(1)).length === 3, 20000, "three dead letters");
    await env.waitAllDone(20000);
    for (let i = 0; i < SHARDS; i++)
      for (const d of await dead(i)) {
        assert.equal(p.shardOf(d.task), i);
        assert.equal(d.reason.toString(), "failed");
      }
    assert.deepEqual([...new Set([3, 4, 8].map((t) => p.shardOf(tasks[t])))].sort(), [0, 1]);
    assert.equal(await env.r.exists(env.key("dead")), 0);
    checkOrder(env.records(), 20);
    p.close();
  });
});

test("each shard recovers its in-flight list, and a refusing shard waits alone", async () => {
  await withEnv(async (env) => {
    // No slotd: the worker alone against the shards' lists. Shard 1 refuses
    // (a key of the wrong type) until shard 0's tasks have run.
    const r = env.r;
    await r.lpush(env.shardKey(0, "inflight:w"), '{"key":"k","id":1}', '{"key":"k","id":2}');
    await r.lpush(env.shardKey(1, "inflight:w"), '{"key":"j","id":3}');
    await r.lpush(env.shardKey(1, "queue:w"), '{"key":"j","id":4}');
    await r.set(env.shardKey(1, "attempts"), "not a hash");
    const seen = [];
    const lines = [];
    const say = (m) => lines.push(m);
    const w = new slotd.Worker(async (t) => {
      seen.push([t.json.id, t.attempt]);
      if (seen.length === 2) await r.del(env.shardKey(1, "attempts"));
      if (seen.length === 4) w.stop();
    }, {
      id: "w", port: env.port, namespace: "t", shards: SHARDS, heartbeatTtlMs: 1000, reconnectMinMs: 20, reconnectMaxMs: 100,
      handleSignals: false, logger: { error: say, warn: say, info: say, debug: () => {} },
    });
    await w.run();
    assert.deepEqual(seen, [[1, 2], [2, 2], [3, 2], [4, 1]]);
    assert.ok(lines.some((l) => l.includes("shard 1): recovering the in-flight list refused: WRONGTYPE")), lines.join("\n"));
    for (let i = 0; i < SHARDS; i++) {
      assert.equal(await r.hlen(env.shardKey(i, "attempts")), 0);
      assert.equal(await r.scard(env.shardKey(i, "workers")), 0);
      assert.equal(await r.llen(env.shardKey(i, "inflight:w")), 0);
    }
    assert.equal(w.acked, 4);
  });
});
