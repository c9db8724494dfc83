"use strict";
/*
 * The worker side of docs/protocol.md over one Redis connection: what
 * libslotd (src/slotd_worker.c) does, with its scripts.
 *
 *   const link = new Link(client, { namespace: "slotd", workerId: "w1" });
 *   await link.register();                    // own in-flight back to the queue, heartbeat
 *   const tasks = await link.take(16, true);   // atomically into the in-flight list
 *   await link.ack(tasks);                     // one round trip for the lot
 *   await link.leave();
 *
 * Every write is one script that checks its keys' types first, so a refusal
 * (Refused) changes nothing and the tasks stay held. A reply lost on the way
 * (Lost) is put right on the next call, before anything else: the link reads
 * its in-flight list, gives back to the queue's tail, in order, what a lost
 * take moved there that it does not know it holds, and finds out which of
 * the acknowledgements or dead letters in doubt were done. One caller at a
 * time: the calls of a link must not overlap.
 */
const os = require("os");
const { ReplyError } = require("ioredis");
const scripts = require("./scripts");
const { validWorkerId } = require("./config");

/** A step of the protocol that did not happen. */
class SlotdError extends Error {
  constructor(message) {
    super(message);
    this.name = "SlotdError";
  }
}

/**
 * Redis answered with an error (a key of the wrong type, out of memory, a
 * command the ACL user lacks): nothing changed, the tasks are still held.
 * `taken` holds the tasks that a take sent with a refused ack brought in.
 */
class Refused extends SlotdError {
  constructor(message, taken = []) {
    super(message);
    this.name = "Refused";
    this.taken = taken;
  }
}

/** The connection failed before the reply: the next call puts right what Redis did meanwhile. */
class Lost extends SlotdError {
  constructor(message) {
    super(message);
    this.name = "Lost";
  }
}

/** The task's fingerprint for {ns}:attempts: 64-bit FNV-1a of its bytes, 16 lowercase hex digits. */
function fingerprint(data) {
  // Two 32-bit halves (BigInt per byte would be slow):
  // (hi:lo) * 0x100000001b3 = (hi:lo) * 0x1b3 + (lo << 40), mod 2^64.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < data.length; i++) {
    lo = (lo ^ data[i]) >>> 0;
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / 0x100000000);
    const newLo = loMul >>> 0;
    hi = (Math.imul(hi, 0x1b3) + carry + ((lo << 8) >>> 0)) >>> 0;
    lo = newLo;
  }
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

/** The same, by the definition, with BigInt: for the tests. */
function fingerprintSlow(data) {
  let h = 0xcbf29ce484222325n;
  for (const b of data) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
}

const UNPARSED = Symbol("unparsed");

/**
 * A task taken from the worker's queue: its bytes, its attempt number (1,
 * plus one for each worker that died or restarted holding it), and, as the
 * Worker fills them in, its routing key and slot.
 */
class Task {
  constructor(data, attempt = 1) {
    /** The task's bytes, exactly as the producer pushed them (a Buffer). */
    this.data = data;
    /** 1 the first time it runs; see docs/protocol.md, *Attempts*. */
    this.attempt = attempt;
    /** The routing key's bytes, or null when the whole task is hashed. */
    this.key = null;
    /** The slot, 0..16383. */
    this.slot = 0;
    /** The id of the worker running it. */
    this.workerId = "";
    this._json = UNPARSED;
  }

  /** The task parsed as JSON (throws SyntaxError if it is not JSON). */
  get json() {
    if (this._json === UNPARSED) this._json = JSON.parse(this.data.toString("utf8"));
    return this._json;
  }

  /** The task's bytes as text (UTF-8). */
  get text() {
    return this.data.toString("utf8");
  }
}

const bin = (b) => b.toString("latin1");    // a Buffer as a Map key, byte for byte

function count(buffers) {
  const m = new Map();
  for (const b of buffers) m.set(bin(b), (m.get(bin(b)) || 0) + 1);
  return m;
}

// The scripts as bytes, encoded once.
const S = Object.fromEntries(["TAKE", "ACK", "DEAD", "RECOVER", "BEAT", "LEAVE"].map((n) => [n, Buffer.from(scripts[n], "utf8")]));

/**
 * Sends cmds on client back to back (not as an ioredis pipeline: here that
 * costs more CPU than it saves) and waits for every reply; an error reply comes back as
 * a ReplyError in its place. Throws Lost when the connection failed.
 */
async function send(client, cmds) {
  // Corked, the commands leave in one write (one syscall, one read for Redis).
  const stream = cmds.length > 1 ? client.stream : null;
  if (stream) stream.cork();
  const sent = new Array(cmds.length);
  try {
    for (let i = 0; i < cmds.length; i++) sent[i] = client.callBuffer(...cmds[i]).catch(replyOrLost);
  } finally {
    if (stream) stream.uncork();
  }
  const out = cmds.length === 1 ? [await sent[0]] : await Promise.all(sent);
  let lost = null;
  for (const r of out) if (r instanceof ConnectionLost) lost = lost || r.error;
  if (lost) throw new Lost(`Redis connection lost: ${lost.message}`);
  return out;
}

/** A command's failure other than an error reply: the connection's. */
class ConnectionLost {
  constructor(error) {
    this.error = error;
  }
}

/** An error reply comes back in the command's place; any other failure as a ConnectionLost. */
function replyOrLost(e) {
  return e instanceof ReplyError ? e : new ConnectionLost(e);
}

const refusedText = (what, e) => `${what} refused: ${e.message}`;

/**
 * One worker's connection to Redis, speaking the worker side of the protocol
 * (libslotd's calls). `client` is an ioredis client that never resends a
 * command after a reconnection (see redis.js).
 */
class Link {
  constructor(client, { namespace = "slotd", workerId, heartbeatTtlMs = 3000, weight = 1, prefetch = 16 } = {}) {
    if (!validWorkerId(workerId)) throw new Error(`invalid worker id '${workerId}': 1-64 of [A-Za-z0-9._-]`);
    this.workerId = workerId;
    this.namespace = namespace;
    this.heartbeatTtlMs = heartbeatTtlMs;
    this.prefetch = prefetch;
    const k = `{${namespace}}:`;
    this.queue = `${k}queue:${workerId}`;
    this.inflight = `${k}inflight:${workerId}`;
    this.hb = `${k}hb:${workerId}`;
    this.workers = `${k}workers`;
    this.attempts = `${k}attempts`;
    this.dead = `${k}dead`;
    this.beatValue = JSON.stringify({ host: os.hostname().slice(0, 100), pid: process.pid, weight });
    this.client = client;
    /** Called with a line worth logging (what a lost reply left, put right). */
    this.onInfo = null;
    this._held = new Set();         // tasks taken, not yet acknowledged
    this._unsure = false;           // a write's reply was lost: look before going on
    this._doubt = [];               // acks and dead letters whose reply was lost
    this._ackRefused = false;       // the last ack was refused: take no more room
  }

  /** How many tasks are held: taken and not yet acknowledged. */
  get held() {
    return this._held.size;
  }

  /** Whether task is still held by this link. */
  holds(task) {
    return this._held.has(task);
  }

  _send(...cmds) {
    return send(this.client, cmds);
  }

  /** Puts right what a lost reply may have left, before anything else. */
  async _ready() {
    if (this._unsure) await this._reconcile();
  }

  /** Closes the connection (without leaving: the heartbeat expires). */
  close() {
    this.client.disconnect();
  }

  /**
   * After a lost reply: the in-flight list (newest at its head) is the tasks
   * held, with those of the acks and dead letters in doubt perhaps gone,
   * under whatever a lost take pushed at its head. Gives those back to the
   * queue's tail in order (the recover script, guarded by the length read),
   * and forgets the tasks in doubt that are gone.
   */
  async _reconcile() {
    let got, extra;
    for (;;) {
      [got] = await this._send(["LRANGE", this.inflight, 0, -1]);
      if (got instanceof ReplyError) throw new Refused(refusedText(`reading ${this.inflight}`, got));
      const avail = count([...this._held].map((t) => t.data));
      let kept = 0;
      for (let i = got.length - 1; i >= 0; i--) {
        const k = bin(got[i]);
        const n = avail.get(k) || 0;
        if (n <= 0) break;
        avail.set(k, n - 1);
        kept++;
      }
      extra = got.length - kept;
      if (extra > 0) {
        const [r] = await this._send(["EVAL", S.RECOVER, 3, this.inflight, this.queue, this.attempts, got.length, kept]);
        if (r instanceof ReplyError) {
          if (r.message.startsWith("CHANGED")) continue;
          throw new Refused(refusedText("giving back what a lost take moved", r));
        }
        if (this.onInfo) this.onInfo(`gave back ${extra} tasks that a take whose reply was lost had moved into ${this.inflight}`);
      }
      break;
    }
    const present = count(got.slice(extra));
    const sure = count([...this._held].map((t) => t.data));
    for (const t of this._doubt) sure.set(bin(t.data), sure.get(bin(t.data)) - 1);
    for (const t of this._doubt) {
      const k = bin(t.data);
      // Copies in the list beyond those surely held: not yet removed.
      if ((present.get(k) || 0) > (sure.get(k) || 0)) present.set(k, present.get(k) - 1);
      else this._held.delete(t);
    }
    this._doubt = [];
    this._unsure = false;
  }

  /**
   * Puts what a previous run with this id left in flight back at the front
   * of the queue, in order (their attempt goes up by one), then heartbeats,
   * which registers the worker. Resolves to how many moved.
   */
  async register() {
    let moved = 0;
    for (;;) {
      const [got] = await this._send(["LRANGE", this.inflight, 0, -1]);
      if (got instanceof ReplyError) throw new Refused(refusedText(`reading ${this.inflight}`, got));
      if (got.length) {
        const [r] = await this._send(["EVAL", S.RECOVER, 3, this.inflight, this.queue, this.attempts, got.length, 0,
          ...got.map(fingerprint)]);
        if (r instanceof ReplyError) {
          if (r.message.startsWith("CHANGED")) continue;
          throw new Refused(refusedText("recovering the in-flight list", r));
        }
        moved = Number(r);
      }
      break;
    }
    this._held.clear();
    this._doubt = [];
    this._unsure = false;
    await this.heartbeat();
    return moved;
  }

  /** One heartbeat on this link's connection (registers the worker). */
  heartbeat() {
    return beat((...c) => this._send(...c), this);
  }

  /** The tasks in a take's reply (the script's list, or BLMOVE's one), now held. */
  _taken(got) {
    const tasks = [];
    for (let i = 0; i < got.length; i++) {
      const t = new Task(got[i]);
      tasks.push(t);
      this._held.add(t);
    }
    return tasks;
  }

  async _attempts(tasks) {
    let r;
    try {
      [r] = await this._send(["HMGET", this.attempts, ...tasks.map((t) => fingerprint(t.data))]);
    } catch (e) {
      if (e instanceof Lost) return;      // taken all the same; attempts shown as 1
      throw e;
    }
    if (!Array.isArray(r)) return;
    tasks.forEach((t, i) => {
      const n = r[i] == null ? NaN : parseInt(r[i].toString(), 10);
      if (Number.isFinite(n)) t.attempt = 1 + n;
    });
  }

  /**
   * Takes up to n tasks (never more than prefetch held in all) from the
   * queue into the in-flight list, atomically, oldest first; with block,
   * waits up to blockS for the first when the queue is empty.
   */
  take(n, block = false, blockS = 1) {
    return this.ackAndTake([], n, block, blockS);
  }

  /**
   * Acknowledges done, then takes up to n tasks, in one round trip (the ack
   * script, then the take script). If the ack is refused, the tasks taken
   * are kept and Refused is thrown with them in `.taken`: done is still
   * held, to be acknowledged again.
   */
  async ackAndTake(done, n, block = false, blockS = 1) {
    if (this._unsure) await this._reconcile();
    done = done.filter((t) => this._held.has(t));
    // Room counts the tasks acknowledged first as gone, unless the last ack
    // was refused: then the held stay within prefetch meanwhile.
    const freed = this._ackRefused ? 0 : done.length;
    n = Math.min(n, this.prefetch - (this._held.size - freed));
    const cmds = [];
    if (done.length) cmds.push(this._ackCmd(done));
    if (n > 0) cmds.push(["EVAL", S.TAKE, 3, this.queue, this.inflight, this.attempts, n]);
    if (!cmds.length) return [];
    let replies;
    try {
      replies = await send(this.client, cmds);
    } catch (e) {
      this._lostAck(e, done);
      throw e;
    }
    const ackErr = done.length ? this._acked(replies[0], done) : null;
    let tasks = [];
    if (n > 0) {
      const reply = replies[replies.length - 1];
      if (reply instanceof ReplyError) throw new Refused(refusedText("take", reply));
      tasks = this._taken(reply[0]);
      // Attempts are looked up only when some task has a count ({ns}:attempts not empty).
      if (tasks.length && Number(reply[1])) await this._attempts(tasks);
      else if (!tasks.length && block) tasks = await this._blockTake(blockS);
    }
    if (ackErr) throw new Refused(refusedText("ack", ackErr), tasks);
    return tasks;
  }

  /** A round trip with acknowledgements failed: if its reply was lost, done is in doubt. */
  _lostAck(e, done) {
    if (e instanceof Lost) {
      this._unsure = true;
      for (const t of done) this._doubt.push(t);
    }
  }

  /** The ack script's reply: done is no longer held, or (refused) the error. */
  _acked(reply, done) {
    if (reply instanceof ReplyError) {
      this._ackRefused = true;
      return reply;
    }
    this._ackRefused = false;
    for (const t of done) this._held.delete(t);
    return null;
  }

  /** Waits up to blockS for a task (BLMOVE), when the queue was empty; its attempt is looked up. */
  async _blockTake(blockS) {
    let r;
    try {
      [r] = await this._send(["BLMOVE", this.queue, this.inflight, "RIGHT", "LEFT", blockS]);
    } catch (e) {
      if (e instanceof Lost) this._unsure = true;
      throw e;
    }
    if (r instanceof ReplyError) throw new Refused(refusedText("waiting for a task (BLMOVE)", r));
    if (r == null) return [];
    const tasks = this._taken([r]);
    await this._attempts(tasks);
    return tasks;
  }

  _ackCmd(done) {
    const cmd = ["EVAL", S.ACK, 2, this.inflight, this.attempts, done.length];
    for (const t of done) cmd.push(t.data);
    for (const t of done) if (t.attempt > 1) cmd.push(fingerprint(t.data));
    return cmd;
  }

  /** Acknowledges finished tasks in one round trip. On a throw they are still held (those Redis had already removed are not). */
  async ack(done) {
    await this.ackAndTake(done, 0);
  }

  /**
   * Moves a held task to {ns}:dead as entry (see deadletter.js), in one step
   * with its removal from the in-flight list. On a throw it is still held,
   * unless Redis had done it.
   */
  async deadLetter(task, entry) {
    if (this._unsure) await this._reconcile();
    if (!this._held.has(task)) return;
    let r;
    try {
      [r] = await this._send(["EVAL", S.DEAD, 3, this.dead, this.inflight, this.attempts, entry, task.data,
        fingerprint(task.data)]);
    } catch (e) {
      if (e instanceof Lost) {
        this._unsure = true;
        this._doubt.push(task);
      }
      throw e;
    }
    if (r instanceof ReplyError) throw new Refused(refusedText("dead letter", r));
    this._held.delete(task);
  }

  /**
   * Puts every task still held (not started) back at the front of the queue
   * and deregisters, in one script: slotd moves the slots at once. Stop the
   * heartbeat first, or it registers the worker again.
   */
  async leave() {
    try {
      await this._ready();
    } catch {
      // leaving gives everything back anyway
    }
    for (let attempt = 0; ; attempt++) {
      let r;
      try {
        [r] = await this._send(["EVAL", S.LEAVE, 4, this.inflight, this.queue, this.workers, this.hb, this.workerId]);
      } catch (e) {
        if (e instanceof Lost && attempt === 0) continue;
        throw e;
      }
      if (r instanceof ReplyError) throw new Refused(refusedText("leave", r));
      break;
    }
    this._held.clear();
    this._doubt = [];
    this._unsure = false;
  }
}

/** One heartbeat through sendFn (cmds => replies) for link's keys. */
async function beat(sendFn, link) {
  const [r] = await sendFn(["EVAL", S.BEAT, 2, link.hb, link.workers, link.beatValue, link.heartbeatTtlMs, link.workerId]);
  if (r instanceof ReplyError) throw new Refused(refusedText("heartbeat", r));
}

/**
 * Heartbeats every third of the TTL on its own client until stop().
 * Failures are logged once when they start (then once a minute) and once
 * when they end.
 */
class Heartbeat {
  constructor(link, client, log) {
    this.link = link;
    this.client = client;
    this.log = log;
    /** Heartbeats failed in a row. */
    this.failures = 0;
    this._timer = null;
    this._stopped = false;
    this._running = null;
  }

  /** Starts beating (the first beat one period from now: register() beat already). */
  start() {
    const lk = this.link;
    const period = Math.max(1, Math.floor(lk.heartbeatTtlMs / 3));
    let started = 0;
    let said = 0;
    const once = async () => {
      try {
        await beat((...cmds) => send(this.client, cmds), lk);
        if (this.failures)
          this.log.info(`worker ${lk.workerId}: heartbeat works again after ${((Date.now() - started) / 1000).toFixed(1)} s, ${this.failures} failed`);
        this.failures = 0;
      } catch (e) {
        const now = Date.now();
        if (this.failures === 0) {
          started = said = now;
          this.log.warn(`worker ${lk.workerId}: heartbeat failed: ${e.message}; retrying every ${period} ms; slotd declares` +
            ` this worker dead once its heartbeat is ${lk.heartbeatTtlMs} ms old`);
        } else if (now - said >= 60000) {
          said = now;
          this.log.warn(`worker ${lk.workerId}: heartbeat still failing (for ${Math.round((now - started) / 1000)} s,` +
            ` ${this.failures + 1} failures): ${e.message}`);
        }
        this.failures++;
      }
    };
    const loop = async () => {
      if (this._stopped) return;
      this._running = once();
      await this._running;
      this._running = null;
      if (!this._stopped) this._timer = setTimeout(loop, period);
    };
    this._timer = setTimeout(loop, period);
  }

  /** Stops beating; resolves once a beat in flight is over. */
  async stop() {
    this._stopped = true;
    if (this._timer) clearTimeout(this._timer);
    if (this._running) await this._running;
    this.client.disconnect();
  }
}

module.exports = { Heartbeat, Link, Lost, Refused, SlotdError, Task, fingerprint, fingerprintSlow, UNPARSED };
