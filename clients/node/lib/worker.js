"use strict";
/*
 * Worker: runs an async handler per task with slotd's guarantees, as
 * slotd-worker does for a command (src/worker.c):
 *
 *   take (Link) --> pending (in order) --slot free, < concurrency running--> running
 *        ^                                                              | resolved: ack
 *        |                                                              | rejected: retry later (slot stays busy)
 *        +------------ held < prefetch <--------------------------------+ or dead letter
 *
 * Tasks of one slot run one after another, in the order taken; tasks of
 * other slots run at the same time, up to `concurrency` handlers at once.
 * Handlers start as soon as their slot is free (from the completion of the
 * one before), while the loop below talks to Redis: finished tasks are
 * acknowledged together with the next take, in one round trip.
 *
 * A namespace in shards (shards N > 1) is N namespaces, each with its own
 * slotd: the worker registers with its one id in each, through a Link (and
 * a heartbeat) per shard, takes from all of them into the one pending list,
 * and settles each task through the link that took it. Each slot belongs to
 * one shard, so the per-slot order above is per-key order in every shard. A
 * shard whose Redis fails backs off on its own; the others go on.
 *
 *   link 0 (shard 0) --take--+
 *   link 1 (shard 1) --take--+--> pending --> running --ack/dead letter--> link i
 *   ...  round robin         |
 */
const { EventEmitter } = require("events");
const { makeConfig, validWorkerId } = require("./config");
const { formatEntry } = require("./deadletter");
const { keyslot } = require("./keyslot");
const { Heartbeat, Link, Lost, Refused, SlotdError, UNPARSED } = require("./link");
const redis = require("./redis");
const { makeLogger } = require("./log");

const PENDING = 0, RUNNING = 1, WAITING = 2, DONE = 3, FAILED = 4, SETTLED = 5;
const STACK_MAX = 4096;

function skipWs(s, i) {
  while (i < s.length && (s[i] === " " || s[i] === "\t" || s[i] === "\n" || s[i] === "\r")) i++;
  return i;
}

function endOfString(s, i) {
  let j = i + 1;
  while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
  return j + 1;
}

function endOfValue(s, i) {
  const c = s[i];
  if (c === '"') return endOfString(s, i);
  if (c === "{" || c === "[") {
    let depth = 0;
    let j = i;
    for (; j < s.length; j++) {
      const d = s[j];
      if (d === '"') j = endOfString(s, j) - 1;
      else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        if (--depth === 0) return j + 1;
      }
    }
    return j;
  }
  let j = i;
  while (j < s.length && !",}] \t\n\r".includes(s[j])) j++;
  return j;
}

/** The text of top-level field `field` of the JSON object `text` (valid JSON), as written; the last one wins. */
function rawField(text, field) {
  let i = skipWs(text, 0) + 1;
  let found = null;
  for (;;) {
    i = skipWs(text, i);
    if (i >= text.length || text[i] === "}") return found;
    const kEnd = endOfString(text, i);
    const name = JSON.parse(text.slice(i, kEnd));
    i = skipWs(text, skipWs(text, kEnd) + 1);
    const vEnd = endOfValue(text, i);
    if (name === field) found = text.slice(i, vEnd);
    i = skipWs(text, vEnd);
    if (text[i] === ",") i++;
  }
}

/**
 * The routing key of a task as slotd finds it (docs/protocol.md,
 * *Producers*): the top-level field keyField's string (its UTF-8 bytes) or
 * number (as written); null when the whole task is hashed. Also returns the
 * parsed JSON (or UNPARSED) for reuse.
 */
function routingKey(data, keyField) {
  if (!keyField) return [null, UNPARSED];
  let text, obj;
  try {
    text = data.toString("utf8");
    obj = JSON.parse(text);
  } catch {
    return [null, UNPARSED];
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return [null, obj];
  if (!Object.prototype.hasOwnProperty.call(obj, keyField)) return [null, obj];
  const v = obj[keyField];
  if (typeof v === "string") return [Buffer.from(v, "utf8"), obj];
  if (typeof v === "number") return [Buffer.from(rawField(text, keyField), "utf8"), obj];
  return [null, obj];
}

/** Capped exponential delays with up to 25% jitter (src/backoff.c). */
class Backoff {
  constructor(minMs, maxMs) {
    this.minMs = Math.max(1, minMs);
    this.maxMs = Math.max(this.minMs, maxMs);
    this.attempt = 0;
  }

  nextMs() {
    const d = Math.min(this.minMs * 2 ** Math.min(this.attempt, 30), this.maxMs);
    this.attempt++;
    return d - Math.floor(Math.random() * (Math.floor(d / 4) + 1));
  }

  reset() {
    this.attempt = 0;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A failure that repeats while the worker retries: said when it starts, then at most once a minute, and once when it is over. */
class Trouble {
  constructor(log, wid, what) {
    Object.assign(this, { log, wid, what, since: 0, said: 0, count: 0, kind: "" });
  }

  hit(err) {
    const now = Date.now();
    const refused = err instanceof Refused;
    const kind = err.name + err.message.split(":")[0];
    const say = refused ? (m) => this.log.error(m) : (m) => this.log.warn(m);
    if (this.count === 0 || (refused && kind !== this.kind)) {
      if (this.count === 0) this.since = now;
      say(`worker ${this.wid}: ${this.what}: ${err.message}; retrying with backoff`);
      this.said = now;
      this.kind = kind;
    } else if (now - this.said >= 60000) {
      say(`worker ${this.wid}: still ${this.what}: ${err.message} (for ${Math.round((now - this.since) / 1000)} s,` +
        ` ${this.count + 1} failed attempts); retrying with backoff`);
      this.said = now;
    }
    this.count++;
  }

  over(how) {
    if (this.count)
      this.log.info(`worker ${this.wid}: ${how} after ${((Date.now() - this.since) / 1000).toFixed(1)} s, ${this.count} failed attempts`);
    this.count = 0;
    this.kind = "";
  }
}

function describeError(e) {
  const name = e && e.name ? e.name : "Error";
  const message = e && e.message !== undefined ? e.message : String(e);
  let stack = e && e.stack ? String(e.stack) : `${name}: ${message}`;
  if (stack.length > STACK_MAX) stack = "..." + stack.slice(-STACK_MAX);
  return [`${name}: ${message}`, stack];
}

/**
 * A slotd worker running `handler` (an async function of a Task) for each
 * task of its queue. Options: `id` (required); `config` (slotd's YAML file,
 * or an object of settings); `concurrency` (handlers at once, never two of
 * one slot; default 1); the settings by name (host, port, unix, db,
 * username, password, sentinels, sentinelMaster, namespace, keyField,
 * heartbeatTtlMs, prefetch, maxAttempts, weight, retryMinMs, retryMaxMs,
 * logLevel; options win over the file); `logger` ({error, warn, info,
 * debug}); `clientFactory` (role => ioredis client); `handleSignals`
 * (default true: SIGTERM and SIGINT stop it gracefully). With `shards`
 * above 1 (in the file, or as an option) it serves every shard of the
 * namespace: registered with its id in each, taking from each in turn,
 * settling each task in the shard it came from.
 *
 * Events: "acked" (tasks), "deadLettered" (task, detail), "error" is never
 * emitted: troubles are logged and retried.
 */
class Worker extends EventEmitter {
  constructor(handler, options) {
    super();
    if (typeof handler !== "function" && options === undefined) {
      options = handler;
      handler = null;
    }
    const { id, concurrency = 1, logger, clientFactory, handleSignals = true, ...settings } = options || {};
    this.config = makeConfig(settings);
    if (!validWorkerId(id)) throw new Error(`invalid worker id '${id}': 1-64 of [A-Za-z0-9._-]`);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100000) throw new Error("concurrency must be 1..100000");
    /** The worker's id. */
    this.id = id;
    this.concurrency = concurrency;
    this.log = logger || makeLogger(this.config.logLevel);
    this._handler = handler;
    this._factory = clientFactory || redis.clientFactory(this.config, `slotd-worker:${id}`);
    this._handleSignals = handleSignals;
    this._stopping = false;
    this._jobs = [];
    this._busy = new Map();     // slot -> its job running or waiting for a retry
    this._running = 0;
    this._pending = 0;          // jobs PENDING
    this._waiting = 0;          // jobs WAITING
    this._failed = false;       // some job FAILED, to dead-letter
    this._queue = [];           // PENDING jobs in the order taken (null: started), from _head
    this._head = 0;
    this._retries = [];         // PENDING jobs whose retry is due
    this._timers = new Set();
    this._wake = null;
    this._shards = [];          // one Shard per shard, in order
    this._nextTake = 0;         // the shard the next round of takes starts at
    this._nextWait = 0;         // the shard the next blocking take waits on
    /** Tasks acknowledged and dead-lettered since start. */
    this.acked = 0;
    this.deadLettered = 0;
  }

  /** Sets the handler (an async function of a Task); returns it, so it can wrap a definition. */
  handler(fn) {
    this._handler = fn;
    return fn;
  }

  /** Asks the worker to stop as SIGTERM does: it finishes what runs, gives back what it holds, and leaves. */
  stop() {
    this._stopping = true;
    this._poke();
  }

  _poke() {
    if (this._wake) {
      const w = this._wake;
      this._wake = null;
      w();
    }
  }

  _waitMs(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this._wake = null;
        resolve();
      }, ms);
      this._wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Registers (in every shard when `shards` is above 1), works until stop() (or SIGTERM/SIGINT), then leaves gracefully. Resolves when it has left. */
  async run() {
    if (typeof this._handler !== "function") throw new Error("the worker has no handler: pass one or set it with worker.handler(fn)");
    const cfg = this.config;
    const onSignal = () => this.stop();
    if (this._handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    const n = cfg.shards > 1 ? cfg.shards : 1;
    const shards = (this._shards = []);
    for (let i = 0; i < n; i++) {
      const link = new Link(this._factory(role("worker", i, n)), {
        namespace: n === 1 ? cfg.namespace : `${cfg.namespace}#${i}`, workerId: this.id, heartbeatTtlMs: cfg.heartbeatTtlMs,
        weight: cfg.weight, prefetch: cfg.prefetch,
      });
      link.onInfo = (m) => this.log.info(`worker ${this.id}: ${m}`);
      const where = n === 1 ? "" : `, shard ${i}`;
      shards.push(new Shard(i, link, new Trouble(this.log, this.id, `Redis (${redis.describe(cfg)}${where})`),
        new Backoff(cfg.reconnectMinMs, cfg.reconnectMaxMs)));
    }
    try {
      await this._loop();
    } finally {
      for (const t of this._timers) clearTimeout(t);
      this._timers.clear();
      for (const sh of shards) if (sh.beat) await sh.beat.stop();
      if (this._handleSignals) {
        process.removeListener("SIGTERM", onSignal);
        process.removeListener("SIGINT", onSignal);
      }
      await this._leave();
      for (const sh of shards) sh.link.close();
    }
  }

  /**
   * Registers sh's link (what a previous run of this id left in that shard's
   * in-flight list goes back to the front of its queue) and starts its
   * heartbeat; on a failure it tries again after its backoff, while the
   * other shards work.
   */
  async _bringUp(sh) {
    if (sh.beat || !sh.due(Date.now())) return;
    let moved;
    try {
      moved = await sh.link.register();
    } catch (e) {
      if (!(e instanceof SlotdError)) throw e;
      sh.failed(e);
      return;
    }
    sh.trouble.over("registered");
    sh.down.reset();
    sh.retryAt = 0;
    const cfg = this.config;
    const n = this._shards.length;
    sh.beat = new Heartbeat(sh.link, this._factory(role("heartbeat", sh.index, n)), this.log);
    sh.beat.start();
    this.log.info(`worker ${this.id} registered${n > 1 ? ` in shard ${sh.index} of ${n}` : ""} (prefetch ${cfg.prefetch},` +
      ` concurrency ${this.concurrency}, weight ${cfg.weight})` + (moved ? `; ${moved} tasks of a previous run back in the queue` : ""));
  }

  /** Leaves every shard it registered with: each link gives back what it holds there (not started, and waiting for a retry) and deregisters. */
  async _leave() {
    const given = this._pending + this._waiting;
    if (this._waiting) this.log.info(`worker ${this.id}: giving back ${this._waiting} tasks awaiting a retry`);
    const n = this._shards.length;
    for (const sh of this._shards) {
      if (!sh.beat) continue;
      try {
        await sh.link.leave();
        this.log.info(`worker ${this.id} left${n > 1 ? ` shard ${sh.index}` : ""}${given && n === 1 ? `, giving back ${given} tasks it held` : ""}`);
      } catch (e) {
        this.log.error(`worker ${this.id}: leave failed${n > 1 ? ` in shard ${sh.index}` : ""}: ${e.message}; slotd declares it dead once its heartbeat expires`);
      }
    }
    if (given && n > 1) this.log.info(`worker ${this.id} gave back ${given} tasks it held`);
    this._jobs = [];
  }

  _route(task) {
    const [key, parsed] = routingKey(task.data, this.config.keyField);
    task.key = key;
    task.slot = keyslot(key === null ? task.data : key);
    task.workerId = this.id;
    if (parsed !== UNPARSED) task._json = parsed;
  }

  _busyAdd(slot) {
    this._busy.set(slot, (this._busy.get(slot) || 0) + 1);
  }

  _busyDel(slot) {
    const n = this._busy.get(slot) - 1;
    if (n) this._busy.set(slot, n);
    else this._busy.delete(slot);
  }

  _start(job) {
    job.runs++;
    const task = job.task;
    task.attempt = job.base + job.runs - 1;
    job.state = RUNNING;
    this._running++;
    this._busyAdd(task.slot);
    let p;
    try {
      p = Promise.resolve(this._handler(task));
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(() => this._finish(job, null), (e) => this._finish(job, describeError(e)));
  }

  _finish(job, failure) {
    const cfg = this.config;
    const slot = job.task.slot;
    this._running--;
    this._busyDel(slot);
    if (failure === null) {
      job.state = DONE;
    } else if (job.runs < cfg.maxAttempts) {
      const d = Math.min(cfg.retryMinMs * 2 ** Math.min(job.runs - 1, 30), cfg.retryMaxMs);
      const delay = d - Math.floor(Math.random() * (Math.floor(d / 4) + 1));
      job.state = WAITING;
      this._waiting++;
      this._busyAdd(slot);
      this.log.info(`worker ${this.id}: task of slot ${slot} failed (${failure[0]}), retry ${job.runs} of ${cfg.maxAttempts - 1} in ${delay} ms`);
      const t = setTimeout(() => {
        this._timers.delete(t);
        if (job.state !== WAITING || this._stopping) return;
        // The slot stays busy until the retry starts: nothing newer of it runs first.
        this._waiting--;
        job.state = PENDING;
        this._retries.push(job);
        this._pending++;
        this._pump();
        this._poke();
      }, delay);
      this._timers.add(t);
    } else {
      job.state = FAILED;
      job.failure = failure;
      this._failed = true;
    }
    this._pump();
    // The loop has something to do only once every task taken has started
    // (or the rest wait for busy slots), or to dead-letter: not at each task.
    if (this._pending === 0 || this._running < this.concurrency || this._failed || this._stopping) this._poke();
  }

  /**
   * Starts what may start: retries that are due, then pending tasks in
   * order whose slot is free. The pending wait in `_queue` in the order
   * taken; a task whose slot is busy stays where it is.
   */
  _pump() {
    if (this._stopping || this._pending === 0) return;
    const busy = this._busy;
    const retries = this._retries;
    while (retries.length && this._running < this.concurrency) {
      const job = retries.shift();
      this._pending--;
      this._busyDel(job.task.slot);
      this._start(job);
    }
    const q = this._queue;
    let skipped = false;
    let i = this._head;
    for (; i < q.length && this._running < this.concurrency; i++) {
      const job = q[i];
      if (job === null) continue;
      if (busy.has(job.task.slot)) {
        skipped = true;
        continue;
      }
      q[i] = null;
      this._pending--;
      this._start(job);
    }
    // Drop what was started from the front; compact when a busy slot left holes.
    while (this._head < q.length && q[this._head] === null) this._head++;
    if (this._head === q.length) {
      q.length = 0;
      this._head = 0;
    } else if (skipped && this._head > 64) {
      this._queue = q.slice(this._head).filter((j) => j !== null);
      this._head = 0;
    }
  }

  /** Dead-letters the tasks that failed their last attempt, each in its shard; one that cannot be yet stays, and its shard backs off. */
  async _deadLetters() {
    if (!this._failed) return;
    this._failed = false;
    let any = false;
    const now = Date.now();
    for (const job of this._jobs) {
      if (job.state !== FAILED) continue;
      const sh = this._shards[job.shard];
      if (!sh.due(now)) {
        this._failed = true;
        continue;
      }
      any = true;
      const [what, stack] = job.failure;
      const detail = `${what} after ${job.runs} attempts; stack: ${stack}`;
      try {
        await sh.link.deadLetter(job.task, formatEntry("failed", detail, job.task.data));
      } catch (e) {
        if (!(e instanceof SlotdError)) throw e;
        this.log.error(`worker ${this.id}: cannot dead-letter a task of slot ${job.task.slot} yet: ${e.message}`);
        sh.retryAt = Date.now() + sh.down.nextMs();
        this._failed = true;
        continue;
      }
      this.log.warn(`worker ${this.id}: task of slot ${job.task.slot} dead-lettered: ${what} after ${job.runs} attempts`);
      job.state = SETTLED;
      this.deadLettered++;
      this.emit("deadLettered", job.task, detail);
    }
    if (any) this._jobs = this._jobs.filter((j) => j.state !== SETTLED);
  }

  _settled(link, done) {
    let n = 0;
    for (const job of done) {
      if (!link.holds(job.task)) {
        job.state = SETTLED;
        n++;
      }
    }
    if (n) {
      this.acked += n;
      this._jobs = this._jobs.filter((j) => j.state !== SETTLED);
      if (this.listenerCount("acked")) this.emit("acked", done.filter((j) => j.state === SETTLED).map((j) => j.task));
    }
  }

  _add(tasks, shard) {
    for (const t of tasks) {
      this._route(t);
      const job = { task: t, shard, state: PENDING, runs: 0, base: t.attempt, failure: null };
      this._jobs.push(job);
      this._queue.push(job);
    }
    this._pending += tasks.length;
    this._pump();
  }

  /**
   * Acknowledges sh's done and takes up to n from sh (waiting up to blockS
   * for the first with block), in one round trip: how many came, or -1 when
   * the call failed (said, and the shard backs off).
   */
  async _exchange(sh, done, n, block, blockS) {
    let fresh;
    try {
      fresh = await sh.link.ackAndTake(done.map((j) => j.task), n, block, blockS);
    } catch (e) {
      if (!(e instanceof SlotdError)) throw e;
      sh.failed(e);
      if (e instanceof Refused) {
        this._add(e.taken, sh.index);
        this._settled(sh.link, done);
      }
      return -1;
    }
    sh.worked();
    this._settled(sh.link, done);
    if (fresh.length) this._add(fresh, sh.index);
    return fresh.length;
  }

  /**
   * Acknowledges what is done and takes, fairly across the shards: each
   * turn starts at the next shard in turn, and each may take its share of
   * the room left (the room over the shards still to ask, rounded up), so
   * busy shards split the prefetch and one found empty (left alone for
   * shardWaitMs) leaves its share to the others. When nothing came and the
   * worker is idle, it waits for a task on one shard, the next in turn, for
   * shardWaitMs. With one shard: one round trip, waiting up to BLOCK_S when
   * idle. Resolves to how many came.
   */
  async _take(done, idle) {
    const shards = this._shards;
    const prefetch = this.config.prefetch;
    const now = Date.now();
    if (shards.length === 1) {
      const sh = shards[0];
      if (!sh.usable(now)) return 0;
      const room = prefetch - this._jobs.length + done.length;
      return Math.max(0, await this._exchange(sh, done, Math.max(room, 0), idle, redis.BLOCK_S));
    }
    const by = new Map();
    for (const j of done) {
      if (!by.has(j.shard)) by.set(j.shard, []);
      by.get(j.shard).push(j);
    }
    const usable = shards.filter((sh) => sh.usable(now));
    let room = prefetch - this._jobs.length;
    for (const sh of usable) room += (by.get(sh.index) || []).length;
    const quietMs = shardWaitMs(shards.length);
    let left = usable.length;
    let total = 0;
    for (let k = 0; k < shards.length; k++) {
      const sh = shards[(this._nextTake + k) % shards.length];
      if (!sh.usable(now)) continue;
      const mine = by.get(sh.index) || [];
      const share = sh.quietUntil > now || room <= 0 ? 0 : Math.ceil(room / left);
      left--;
      if (!share && !mine.length) continue;
      const got = await this._exchange(sh, mine, share, false, 0);
      if (share) sh.quietUntil = got === 0 ? now + quietMs : 0;
      if (got > 0) {
        room -= got;
        total += got;
      }
    }
    this._nextTake = (this._nextTake + 1) % shards.length;
    if (total || !idle || this._jobs.length) return total;
    for (let k = 0; k < shards.length; k++) {
      const sh = shards[(this._nextWait + k) % shards.length];
      if (!sh.usable(Date.now())) continue;
      this._nextWait = (sh.index + 1) % shards.length;
      const got = await this._exchange(sh, [], prefetch, true, quietMs / 1000);
      sh.quietUntil = got === 0 ? Date.now() + quietMs : 0;
      return Math.max(got, 0);
    }
    return 0;
  }

  /** Milliseconds until the first shard backing off may be called again (0 for one due and not yet registered), at most cap. */
  _untilRetry(cap) {
    const now = Date.now();
    let ms = cap;
    for (const sh of this._shards) {
      if (sh.retryAt > now) ms = Math.min(ms, sh.retryAt - now);
      else if (!sh.beat) ms = 0;
    }
    return Math.max(ms, 1);
  }

  /*
   * The loop is kept small, and what runs only while stopping is apart
   * (_stopTurn): a short process (a bench's 25,000 tasks) spends much of its
   * CPU compiling the hot functions, in proportion to their size.
   */
  async _loop() {
    const prefetch = this.config.prefetch;
    const shards = this._shards;
    for (;;) {
      if (!this._stopping) for (const sh of shards) if (!sh.beat) await this._bringUp(sh);
      if (this._failed) await this._deadLetters();
      const done = this._jobs.filter(isDone);
      if (this._stopping) {
        if (await this._stopTurn(done)) return;
        continue;
      }
      const room = prefetch - this._jobs.length + done.length;
      // To Redis once every task taken has started (or those left wait for a
      // busy slot): the finished ones are acknowledged and the room filled in
      // one round trip, while the handlers run on.
      if ((room > 0 || done.length) && (this._pending === 0 || this._running < this.concurrency)) {
        const idle = this._running === 0 && this._waiting === 0 && done.length === this._jobs.length;
        if (await this._take(done, idle)) continue;
        if (idle && this._anyUsable()) continue;
        if (this._settleDue()) continue;
      }
      let wait = room > 0 && this._pending === 0 ? 20 : 1000;
      if (!this._allUsable()) wait = this._untilRetry(wait);   // a shard backs off, or is not up yet
      await this._waitMs(wait);
    }
  }

  _anyUsable() {
    const now = Date.now();
    return this._shards.some((sh) => sh.usable(now));
  }

  _allUsable() {
    const now = Date.now();
    return this._shards.every((sh) => sh.usable(now));
  }

  /** Whether some job is to be acknowledged or dead-lettered in a shard that may be called now (not backing off). */
  _settleDue() {
    const now = Date.now();
    return this._jobs.some((j) => (j.state === DONE || j.state === FAILED) && this._shards[j.shard].due(now));
  }

  /**
   * A turn of the loop once stopping: acknowledges what is done, each in its
   * shard, else waits for the handlers still running. Resolves to true when
   * the loop is over.
   */
  async _stopTurn(done) {
    if (done.length) {
      for (const sh of this._shards) {
        const mine = done.filter((j) => j.shard === sh.index);
        if (!mine.length) continue;
        try {
          await sh.link.ack(mine.map((j) => j.task));
        } catch (e) {
          if (!(e instanceof SlotdError)) throw e;
          sh.trouble.hit(e);
          if (this._running === 0 && sh.trouble.count >= 5) {
            this.log.warn(`worker ${this.id}: stopping with ${mine.length} tasks not acknowledged: leaving puts them back, and they run again`);
            return true;
          }
          await sleep(sh.down.nextMs());
        }
        this._settled(sh.link, mine);
      }
      return false;
    }
    if (this._running === 0 && !this._jobs.some((j) => j.state === FAILED)) return true;
    await this._waitMs(50);
    return false;
  }
}

function isDone(j) {
  return j.state === DONE;
}

/**
 * With several shards, how long a blocking take waits on one of them, and
 * how long a shard whose queue was found empty is left alone: 25 ms per
 * shard, 100 ms to 1 s, as slotd-worker (src/worker.c, shard_wait_ms). A
 * task arriving in an empty shard waits at most that long, and a worker
 * costs each shard's Redis at most 1000 / wait looks a second, idle or busy
 * (about 40 commands a second in all).
 */
function shardWaitMs(shards) {
  return Math.min(Math.max(25 * shards, 100), 1000);
}

/** The client factory's role name of a shard's connection: "worker", or "worker#<i>" when the namespace is in shards. */
function role(base, shard, shards) {
  return shards === 1 ? base : `${base}#${shard}`;
}

/** One shard's link (the namespace's own when not sharded) and what the worker knows of it. */
class Shard {
  constructor(index, link, trouble, down) {
    this.index = index;             // 0 when not sharded
    this.link = link;
    this.beat = null;               // runs once registered
    this.trouble = trouble;         // its connection's failures, said once per episode
    this.down = down;               // between failed calls to this shard
    this.retryAt = 0;               // Date.now() ms: no call to this shard before
    this.quietUntil = 0;            // its queue was found empty: not looked at before
  }

  /** Not backing off. */
  due(now) {
    return this.retryAt <= now;
  }

  /** Worth taking from: registered, heartbeating, not backing off. */
  usable(now) {
    return this.beat !== null && this.retryAt <= now;
  }

  /** A call failed: said (as the episode says it), and no other call to this shard before its backoff. */
  failed(err) {
    this.trouble.hit(err);
    this.retryAt = Date.now() + this.down.nextMs();
  }

  /** A call went through. */
  worked() {
    if (this.trouble.count) {
      this.trouble.over("working again");
      this.down.reset();
    }
    this.retryAt = 0;
  }
}

module.exports = { Worker, routingKey, rawField, Backoff, shardWaitMs };
