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
 * (default true: SIGTERM and SIGINT stop it gracefully).
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
    this._link = null;
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

  /** Registers, works until stop() (or SIGTERM/SIGINT), then leaves gracefully. Resolves when it has left. */
  async run() {
    if (typeof this._handler !== "function") throw new Error("the worker has no handler: pass one or set it with worker.handler(fn)");
    const cfg = this.config;
    const onSignal = () => this.stop();
    if (this._handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    const trouble = new Trouble(this.log, this.id, `Redis (${redis.describe(cfg)})`);
    const down = new Backoff(cfg.reconnectMinMs, cfg.reconnectMaxMs);
    const link = (this._link = new Link(this._factory("worker"), {
      namespace: cfg.namespace, workerId: this.id, heartbeatTtlMs: cfg.heartbeatTtlMs, weight: cfg.weight, prefetch: cfg.prefetch,
    }));
    link.onInfo = (m) => this.log.info(`worker ${this.id}: ${m}`);
    let beat = null;
    try {
      let moved = 0;
      for (;;) {
        if (this._stopping) return;
        try {
          moved = await link.register();
          break;
        } catch (e) {
          if (!(e instanceof SlotdError)) throw e;
          trouble.hit(e);
          await this._waitMs(down.nextMs());
        }
      }
      trouble.over("registered");
      down.reset();
      beat = new Heartbeat(link, this._factory("heartbeat"), this.log);
      beat.start();
      this.log.info(`worker ${this.id} registered (prefetch ${cfg.prefetch}, concurrency ${this.concurrency}, weight ${cfg.weight})` +
        (moved ? `; ${moved} tasks of a previous run back in the queue` : ""));
      await this._loop(link, trouble, down);
    } finally {
      for (const t of this._timers) clearTimeout(t);
      this._timers.clear();
      if (beat) await beat.stop();
      if (this._handleSignals) {
        process.removeListener("SIGTERM", onSignal);
        process.removeListener("SIGINT", onSignal);
      }
      if (beat) await this._leave(link);
      link.close();
    }
  }

  async _leave(link) {
    const given = this._pending + this._waiting;
    if (this._waiting) this.log.info(`worker ${this.id}: giving back ${this._waiting} tasks awaiting a retry`);
    try {
      await link.leave();
      this.log.info(`worker ${this.id} left${given ? `, giving back ${given} tasks it held` : ""}`);
    } catch (e) {
      this.log.error(`worker ${this.id}: leave failed: ${e.message}; slotd declares it dead once its heartbeat expires`);
    }
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

  async _deadLetters(link) {
    if (!this._failed) return true;
    this._failed = false;
    let ok = true;
    let any = false;
    for (const job of this._jobs) {
      if (job.state !== FAILED) continue;
      any = true;
      const [what, stack] = job.failure;
      const detail = `${what} after ${job.runs} attempts; stack: ${stack}`;
      try {
        await link.deadLetter(job.task, formatEntry("failed", detail, job.task.data));
      } catch (e) {
        if (!(e instanceof SlotdError)) throw e;
        this.log.error(`worker ${this.id}: cannot dead-letter a task of slot ${job.task.slot} yet: ${e.message}`);
        ok = false;
        this._failed = true;
        continue;
      }
      this.log.warn(`worker ${this.id}: task of slot ${job.task.slot} dead-lettered: ${what} after ${job.runs} attempts`);
      job.state = SETTLED;
      this.deadLettered++;
      this.emit("deadLettered", job.task, detail);
    }
    if (any) this._jobs = this._jobs.filter((j) => j.state !== SETTLED);
    return ok;
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

  _add(tasks) {
    for (const t of tasks) {
      this._route(t);
      const job = { task: t, state: PENDING, runs: 0, base: t.attempt, failure: null };
      this._jobs.push(job);
      this._queue.push(job);
    }
    this._pending += tasks.length;
    this._pump();
  }

  async _loop(link, trouble, down) {
    const prefetch = this.config.prefetch;
    for (;;) {
      if (!(await this._deadLetters(link))) {
        await sleep(down.nextMs());
        continue;
      }
      const done = this._jobs.filter((j) => j.state === DONE);
      if (this._stopping) {
        if (done.length) {
          try {
            await link.ack(done.map((j) => j.task));
          } catch (e) {
            if (!(e instanceof SlotdError)) throw e;
            trouble.hit(e);
            if (this._running === 0 && trouble.count >= 5) {
              this.log.warn(`worker ${this.id}: stopping with ${done.length} tasks not acknowledged: leaving puts them back, and they run again`);
              return;
            }
            await sleep(down.nextMs());
          }
          this._settled(link, done);
          continue;
        }
        if (this._running === 0 && !this._jobs.some((j) => j.state === FAILED)) return;
        await this._waitMs(50);
        continue;
      }
      const room = prefetch - this._jobs.length + done.length;
      // To Redis once every task taken has started (or those left wait for a
      // busy slot): the finished ones are acknowledged and the room filled in
      // one round trip, while the handlers run on.
      if ((room > 0 || done.length) && (this._pending === 0 || this._running < this.concurrency)) {
        const idle = this._running === 0 && this._waiting === 0 && done.length === this._jobs.length;
        let fresh;
        try {
          fresh = await link.ackAndTake(done.map((j) => j.task), Math.max(room, 0), idle, redis.BLOCK_S);
        } catch (e) {
          if (!(e instanceof SlotdError)) throw e;
          trouble.hit(e);
          if (e instanceof Refused) {
            this._add(e.taken);
            this._settled(link, done);
          }
          await sleep(down.nextMs());
          continue;
        }
        if (trouble.count) {
          trouble.over("working again");
          down.reset();
        }
        this._settled(link, done);
        if (fresh.length) {
          this._add(fresh);
          continue;
        }
        if (idle) continue;
        if (this._jobs.some((j) => j.state === DONE || j.state === FAILED)) continue;
      }
      await this._waitMs(room > 0 && this._pending === 0 ? 20 : 1000);
    }
  }
}

module.exports = { Worker, routingKey, rawField, Backoff };
