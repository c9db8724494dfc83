"use strict";
// The Worker and the Producer on a Redis Cluster (redis.cluster_seeds):
// three real masters on loopback, a namespace in two shards whose slots are
// on two different masters, a slotd per shard. The tasks the Producer pushed
// to each shard's master run once and each key's in order; then shard 1's
// slot migrates to the third master, while the worker is idle or while it
// is busy with the shard's tasks, and every task, those pushed after (to
// the new master) too, runs once, in order.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const slotd = require("..");
const { keyslot } = require("../lib/keyslot");
const net = require("net");
const { Cluster, Env, checkOrder, makeTasks, waitUntil } = require("./helpers");

/** A loopback port nothing listens on. */
const deadPort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, "127.0.0.1", () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

const SHARDS = 2;

/** A namespace whose two shards' slots are on two different masters. */
async function pickNamespace(c) {
  for (let i = 0; i < 100; i++) {
    const ns = `c${i}`;
    if ((await c.masterOf(keyslot(`{${ns}#0}`))) !== (await c.masterOf(keyslot(`{${ns}#1}`)))) return ns;
  }
  throw new Error("no namespace found");
}

const allRan = (env, from, to) => {
  const seen = new Set(env.records().map((r) => r[1]));
  for (let i = from; i < to; i++) if (!seen.has(i)) return false;
  return true;
};

async function migrated(busy) {
  const cluster = await Cluster.start();
  const env = new Env();
  let p = null;
  try {
    const ns = await pickNamespace(cluster);
    const slots = [0, 1].map((i) => keyslot(`{${ns}#${i}}`));
    const masters = [await cluster.masterOf(slots[0]), await cluster.masterOf(slots[1])];
    // The first seed is down: the next ones are asked.
    const seeds = `127.0.0.1:${await deadPort()},${cluster.seeds()}`;
    fs.writeFileSync(env.conf, `redis:\n  cluster_seeds: "${seeds}"\n  reconnect_min_ms: 20\n` +
      `  reconnect_max_ms: 200\nnamespace: ${ns}\nshards: ${SHARDS}\nhttp:\n  listen: ""\nworkers:\n` +
      "  check_interval_ms: 100\n  heartbeat_ttl_ms: 1000\n");
    await env.startShardSlotds(SHARDS);
    env.startWorker("a", "--prefetch", "8", ...(busy ? ["--sleep-ms", "2"] : []));
    for (let i = 0; i < SHARDS; i++)
      await waitUntil(async () => (await cluster.node(masters[i]).hkeys(`{${ns}#${i}}:slots`)).join(",") === "a",
        10000, `worker a to own the slots of shard ${i}`);
    p = new slotd.Producer({ config: env.conf });
    assert.equal(p.config.clusterSeeds.length, 4);
    assert.equal(new Set(p.clients).size, SHARDS);
    const n = 600;
    const tasks = makeTasks(n, 30);
    assert.deepEqual([...new Set(tasks.map((t) => p.shardOf(t)))].sort(), [0, 1]);
    assert.equal(await p.pushMany(tasks), n);
    if (busy) {
      await waitUntil(() => env.records().length >= 50, 15000, "tasks to run");
    } else {
      await waitUntil(() => allRan(env, 0, n), 15000, "every task to run");
      // Each shard's master has its keys (a cluster node holds only its slots').
      for (let i = 0; i < SHARDS; i++)
        assert.equal(await cluster.node(masters[i]).sismember(`{${ns}#${i}}:workers`, "a"), 1);
    }

    // Shard 1's slot (its keys: the intake, the worker's queue and in-flight
    // list, ...) moves to the third master, the worker idle or not.
    const third = cluster.ports.find((port) => !masters.includes(port));
    await cluster.migrate(slots[1], third);
    if (busy) assert.ok(!allRan(env, 0, n), "the worker was done before the migration");
    assert.equal(await cluster.node(third).sismember(`{${ns}#1}:workers`, "a"), 1);
    // The producer's shard 1 connection meets MOVED: the push fails unapplied,
    // the connection reconnects through the seeds, and the next push goes to
    // the new master.
    const more = makeTasks(300, 30, n);
    const one = more.find((t) => p.shardOf(t) === 1);
    await assert.rejects(p.push(one), /MOVED/);
    await waitUntil(async () => {
      try {
        await p.clients[1].ping();
        return true;
      } catch {
        return false;
      }
    }, 5000, "the producer's shard 1 client to reconnect");
    assert.equal(await p.pushMany(more), more.length);
    await waitUntil(() => allRan(env, 0, n + more.length), 15000, "every task pushed after the move to run");
    const runs = checkOrder(env.records(), n + more.length);
    assert.deepEqual([...new Set(runs.values())], [1], "a task ran twice");
    assert.equal(await cluster.node(third).llen(`{${ns}#1}:intake`), 0);
    // Met by its shard 1 link, which reconnected (busy: perhaps TRYAGAIN or ASK, mid-migration).
    assert.match(env.workerText("a"), /MOVED|TRYAGAIN|ASK/);
    assert.match(env.shardText(1), new RegExp(`moved: 127\\.0\\.0\\.1:${masters[1]} -> 127\\.0\\.0\\.1:${third}`));
  } catch (e) {
    env.shardProcs.forEach((_, i) => process.stderr.write(`--- slotd -s ${i}:\n${env.shardText(i)}\n`));
    process.stderr.write(`--- worker a:\n${env.workerText("a")}\n`);
    throw e;
  } finally {
    if (p) p.close();
    await env.close();
    await cluster.close();
  }
}

test("a worker and a producer in two shards on two masters, then a shard's slot migrated (idle)", () => migrated(false));
test("a worker and a producer in two shards on two masters, then a shard's slot migrated (busy)", () => migrated(true));

test("clusterSeeds is checked", () => {
  assert.throws(() => new slotd.Producer({ clusterSeeds: "127.0.0.1:7000", sentinels: "127.0.0.1:26379", sentinelMaster: "m" }),
    /exclude/);
  assert.throws(() => new slotd.Producer({ clusterSeeds: "127.0.0.1:7000", db: 1 }), /db 0/);
  assert.throws(() => new slotd.Producer({ clusterSeeds: "nowhere" }), /cluster_seeds/);
});

test("no seed answering is retried, and the worker stops cleanly", async () => {
  const lines = [];
  const logger = { error: (m) => lines.push(m), warn: (m) => lines.push(m), info: (m) => lines.push(m), debug: () => {} };
  const w = new slotd.Worker(async () => {}, {
    id: "w", clusterSeeds: `127.0.0.1:${await deadPort()}`, connectTimeoutMs: 100, reconnectMinMs: 20,
    reconnectMaxMs: 50, handleSignals: false, logger,
  });
  setTimeout(() => w.stop(), 1000);
  await w.run();
  assert.match(lines.join("\n"), /Redis Cluster via 127\.0\.0\.1:\d+\): .*retrying with backoff/);
});
