"use strict";
/*
 * What the tests need around the real binaries: a private redis-server and a
 * real slotd (build/slotd) on free loopback ports in a temp dir, stopped by
 * their pids; worker processes (test/worker-main.js) that log each task they
 * run to one shared file. Never touches a Redis it did not start.
 */
const { spawn } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const Redis = require("ioredis");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const NS = "t";

function buildDir() {
  const b = process.env.BUILD || "build";
  return path.isAbsolute(b) ? b : path.join(ROOT, b);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(pred, timeoutMs = 10000, what = "condition") {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Waits for proc to exit (after sig, then SIGKILL past timeoutMs); resolves to its exit code or signal. */
function stopProc(proc, sig = "SIGTERM", timeoutMs = 10000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode ?? proc.signalCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.once("exit", (code, signal) => {
      clearTimeout(t);
      resolve(code ?? signal);
    });
    proc.kill(sig);
  });
}

class Env {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "slotd-node-"));
    this.conf = path.join(this.dir, "slotd.yaml");
    this.slotdLog = path.join(this.dir, "slotd.log");
    this.tasksLog = path.join(this.dir, "tasks.log");
    this.workers = {};
    this.redisProc = null;
    this.slotdProc = null;
    this.shardProcs = [];
    this.r = null;
  }

  async startRedis() {
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort();
      const conf = path.join(this.dir, "redis.conf");
      fs.writeFileSync(conf, `port ${this.port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir ${this.dir}\nlogfile ${this.dir}/redis.log\n`);
      this.redisProc = spawn("redis-server", [conf], { stdio: "ignore" });
      const r = new Redis({ port: this.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on("error", () => {});
      const end = Date.now() + 10000;
      while (Date.now() < end && this.redisProc.exitCode === null) {
        try {
          await r.connect();
          await r.ping();
          this.r = new Redis({ port: this.port });
          r.disconnect();
          return;
        } catch {
          await sleep(20);
        }
      }
      r.disconnect();
      await stopProc(this.redisProc, "SIGKILL");
    }
    throw new Error("redis-server did not start");
  }

  /** A redis-server in sentinel mode watching this Redis as master; resolves to its port. */
  async startSentinel(master) {
    const port = await freePort();
    const conf = path.join(this.dir, "sentinel.conf");
    fs.writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${this.dir}\nsentinel monitor ${master} 127.0.0.1 ${this.port} 1\n`);
    this.workers.sentinel = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
    const s = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    s.on("error", () => {});
    try {
      await waitUntil(async () => {
        try {
          return (await s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)) !== null;
        } catch {
          return false;
        }
      }, 10000, "the sentinel");
    } finally {
      s.disconnect();
    }
    return port;
  }

  writeConf(extra = "") {
    fs.writeFileSync(this.conf, `redis:\n  port: ${this.port}\n  reconnect_min_ms: 20\n  reconnect_max_ms: 200\n` +
      `namespace: ${NS}\nhttp:\n  listen: ""\nworkers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1000\n${extra}`);
  }

  async startSlotd() {
    const log = fs.openSync(this.slotdLog, "a");
    this.slotdProc = spawn(path.join(buildDir(), "slotd"), ["-c", this.conf], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    await waitUntil(() => this.slotdText().includes("slot table loaded"), 10000, "slotd to start");
  }

  /** A slotd per shard (slotd -s i), logging to slotd-<i>.log. */
  async startShardSlotds(shards) {
    for (let i = 0; i < shards; i++) {
      const log = fs.openSync(path.join(this.dir, `slotd-${i}.log`), "a");
      this.shardProcs.push(spawn(path.join(buildDir(), "slotd"), ["-c", this.conf, "-s", String(i)], { stdio: ["ignore", log, log] }));
      fs.closeSync(log);
    }
    for (let i = 0; i < shards; i++)
      await waitUntil(() => this.shardText(i).includes("slot table loaded"), 10000, `slotd -s ${i} to start`);
  }

  shardText(shard) {
    try {
      return fs.readFileSync(path.join(this.dir, `slotd-${shard}.log`), "utf8");
    } catch {
      return "";
    }
  }

  shardKey(shard, name) {
    return `{${NS}#${shard}}:${name}`;
  }

  slotdText() {
    try {
      return fs.readFileSync(this.slotdLog, "utf8");
    } catch {
      return "";
    }
  }

  key(name) {
    return `{${NS}}:${name}`;
  }

  startWorker(id, ...args) {
    const log = fs.openSync(path.join(this.dir, `worker-${id}.log`), "a");
    const p = spawn(process.execPath, [path.join(__dirname, "worker-main.js"), "--config", this.conf, "--id", id,
      "--log", this.tasksLog, ...args], { stdio: ["ignore", log, log] });
    fs.closeSync(log);
    this.workers[id] = p;
    return p;
  }

  workerText(id) {
    try {
      return fs.readFileSync(path.join(this.dir, `worker-${id}.log`), "utf8");
    } catch {
      return "";
    }
  }

  async owners() {
    return (await this.r.hkeys(this.key("slots"))).sort();
  }

  async waitOwners(ids, timeoutMs = 10000) {
    const want = [...ids].sort().join(",");
    await waitUntil(async () => (await this.owners()).join(",") === want, timeoutMs, `slots owned by ${ids}`);
  }

  async push(tasks) {
    for (let i = 0; i < tasks.length; i += 1000) await this.r.lpush(this.key("intake"), ...tasks.slice(i, i + 1000));
  }

  /**
   * Tasks not yet acknowledged: in the intake, queues, in-flight, fenced and
   * forward lists, of the namespace or of any of its shards.
   */
  async outstanding() {
    let n = 0;
    const keys = await this.r.keys(`{${NS}[}#]*`);
    for (const k of keys) if (/}:(intake|(queue|inflight|fenced):.+|forward:\d+)$/.test(k)) n += await this.r.llen(k);
    return n;
  }

  async waitAllDone(timeoutMs = 30000) {
    await waitUntil(async () => (await this.outstanding()) === 0, timeoutMs, "every task acknowledged");
  }

  /** [worker, task id, key, attempt] per line of the shared log, in the order run. */
  records() {
    let text = "";
    try {
      text = fs.readFileSync(this.tasksLog, "utf8");
    } catch {
      return [];
    }
    return text.split("\n").filter(Boolean).map((l) => {
      const [w, id, key, attempt] = l.split(" ");
      return [w, +id, key, +attempt];
    });
  }

  async close() {
    for (const p of Object.values(this.workers)) await stopProc(p, "SIGKILL", 5000);
    if (this.r) this.r.disconnect();
    for (const p of [this.slotdProc, ...this.shardProcs]) if (p) await stopProc(p, "SIGKILL", 5000);
    if (this.redisProc) await stopProc(this.redisProc, "SIGKILL", 5000);
    if (process.env.SLOTD_KEEP_TEST_DIRS) process.stderr.write(`kept ${this.dir}\n`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Task i: {"id":i,"key":"user:<i % keys>"}; one key in 5 shares a hash tag. */
function makeTasks(n, keys, start = 0) {
  const out = [];
  for (let i = start; i < start + n; i++) {
    const k = i % keys;
    const key = k % 5 === 4 ? `{grp:${k % 3}}.user:${k}` : `user:${k}`;
    out.push(`{"id":${i},"key":"${key}"}`);
  }
  return out;
}

/**
 * Every task [start, start+n) ran; for each key, the first and the last run
 * of each task are both in push order. Returns runs per task id.
 */
function checkOrder(records, n, start = 0) {
  const runs = new Map();
  for (const r of records) runs.set(r[1], (runs.get(r[1]) || 0) + 1);
  const missing = [];
  for (let i = start; i < start + n; i++) if (!runs.get(i)) missing.push(i);
  if (missing.length) throw new Error(`tasks never ran: ${missing.slice(0, 20)}`);
  const byKey = new Map();
  for (const [, id, key] of records) {
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(id);
  }
  for (const [key, ids] of byKey) {
    const first = [...new Set(ids)];
    const last = [...new Set([...ids].reverse())].reverse();
    const sorted = (a) => a.every((x, i) => i === 0 || a[i - 1] < x);
    if (!sorted(first)) throw new Error(`key ${key}: first runs out of order: ${first}`);
    if (!sorted(last)) throw new Error(`key ${key}: last runs out of order: ${ids}`);
  }
  return runs;
}

/** Runs fn(env) with a fresh Env (redis started, config written), closing it after. */
async function withEnv(fn) {
  const env = new Env();
  try {
    await env.startRedis();
    env.writeConf();
    await fn(env);
  } catch (e) {
    // what slotd and the workers said, for a failure seen only in CI
    process.stderr.write(`--- slotd:\n${env.slotdText()}\n`);
    env.shardProcs.forEach((_, i) => process.stderr.write(`--- slotd -s ${i}:\n${env.shardText(i)}\n`));
    for (const id of Object.keys(env.workers)) process.stderr.write(`--- worker ${id}:\n${env.workerText(id)}\n`);
    throw e;
  } finally {
    await env.close();
  }
}

/**
 * A Redis Cluster of three masters (no replicas) on loopback, in a temp dir;
 * stopped by pids. Made with Cluster.start().
 */
class Cluster {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "slotd-nodecluster-"));
    this.procs = [];
    this.ports = [];
    this.clients = new Map();
  }

  static async start(nodes = 3) {
    const c = new Cluster();
    try {
      for (let i = 0; i < nodes; i++) {
        const d = path.join(c.dir, `n${i}`);
        fs.mkdirSync(d);
        let port = await freePort();
        while (port + 10000 > 65535) port = await freePort();     // the cluster bus is on port + 10000
        c.ports.push(port);
        c.procs.push(spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
          "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no",
          "--dir", d, "--logfile", path.join(d, "redis.log")], { stdio: "ignore" }));
      }
      for (const port of c.ports)
        await waitUntil(async () => (await c.node(port).ping().catch(() => "")) === "PONG", 10000, `redis-server on ${port}`);
      const out = require("child_process").spawnSync("redis-cli", ["--cluster", "create",
        ...c.ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], { encoding: "utf8" });
      if (out.status !== 0) throw new Error(`redis-cli --cluster create: ${out.stdout}${out.stderr}`);
      for (const port of c.ports)
        await waitUntil(async () => String(await c.node(port).call("CLUSTER", "INFO")).includes("cluster_state:ok"),
          20000, `cluster_state:ok on ${port}`);
      return c;
    } catch (e) {
      await c.close();
      throw e;
    }
  }

  /** A plain client of the node on port (kept, closed by close()). */
  node(port) {
    if (!this.clients.has(port)) {
      const r = new Redis({ port, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
      r.on("error", () => {});
      this.clients.set(port, r);
    }
    return this.clients.get(port);
  }

  seeds() {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(",");
  }

  /** The port of the master of slot, as the node on port (or the first) says. */
  async masterOf(slot, port = this.ports[0]) {
    for (const [lo, hi, m] of await this.node(port).call("CLUSTER", "SLOTS")) if (lo <= slot && slot <= hi) return m[1];
    throw new Error(`nobody serves slot ${slot}`);
  }

  async nodeId(port) {
    return this.node(port).call("CLUSTER", "MYID");
  }

  /** Moves slot and its keys to the master on port to, as tests/integration/test_cluster.c's migrate_slot does. */
  async migrate(slot, to) {
    const from = await this.masterOf(slot);
    const s = this.node(from);
    const d = this.node(to);
    const [src, dst] = [await this.nodeId(from), await this.nodeId(to)];
    await d.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src);
    await s.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst);
    for (;;) {
      const keys = await s.call("CLUSTER", "GETKEYSINSLOT", slot, 10);
      for (const k of keys) await s.call("MIGRATE", "127.0.0.1", to, k, 0, 5000, "REPLACE");
      if (!keys.length) break;
    }
    await d.call("CLUSTER", "SETSLOT", slot, "NODE", dst);
    await s.call("CLUSTER", "SETSLOT", slot, "NODE", dst);
    for (const port of this.ports) await this.node(port).call("CLUSTER", "SETSLOT", slot, "NODE", dst);
    for (const port of this.ports)
      await waitUntil(async () => (await this.masterOf(slot, port)) === to, 10000, `node ${port} to see slot ${slot} moved`);
  }

  async close() {
    for (const r of this.clients.values()) r.disconnect();
    for (const p of this.procs) await stopProc(p, "SIGKILL", 5000);
    if (process.env.SLOTD_KEEP_TEST_DIRS) process.stderr.write(`kept ${this.dir}\n`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = { Cluster, Env, NS, ROOT, buildDir, checkOrder, makeTasks, sleep, stopProc, waitUntil, withEnv };
