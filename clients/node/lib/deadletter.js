"use strict";
/*
 * Dead-letter entries in the format of docs/protocol.md (*What cannot be
 * routed*), as slotd and libslotd write them (src/deadletter.c):
 *
 *   {"reason":"failed","detail":"...","at_ms":1764000000000,"task":"..."}
 *
 * The task's bytes are recoverable exactly: from "task" when they are valid
 * UTF-8 and escaping does not grow the entry past about 4/3 of the task,
 * else from "task_base64". A reason or detail that is not UTF-8 (or holds a
 * NUL) comes with U+FFFD for each bad byte and the exact bytes in
 * "<name>_base64".
 */

const strict = new TextDecoder("utf-8", { fatal: true });

function validUtf8(buf) {
  try {
    strict.decode(buf);
    return true;
  } catch {
    return false;
  }
}

/** The length of the valid UTF-8 sequence at buf[i], or 0. */
function seqLen(buf, i) {
  const c = buf[i];
  let n, min;
  if (c < 0x80) return c === 0 ? 0 : 1;
  else if (c >= 0xc2 && c <= 0xdf) { n = 2; min = 0x80; }
  else if (c >= 0xe0 && c <= 0xef) { n = 3; min = 0x800; }
  else if (c >= 0xf0 && c <= 0xf4) { n = 4; min = 0x10000; }
  else return 0;
  if (i + n > buf.length) return 0;
  let cp = c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const d = buf[i + k];
    if ((d & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

function setBytes(obj, name, raw) {
  if (validUtf8(raw) && !raw.includes(0)) {
    obj[name] = raw.toString("utf8");
    return;
  }
  let shown = "";
  for (let i = 0; i < raw.length; ) {
    const n = seqLen(raw, i);
    if (n === 0) {
      shown += "\ufffd";
      i++;
    } else {
      shown += raw.toString("utf8", i, i + n);
      i += n;
    }
  }
  obj[name] = shown;
  obj[name + "_base64"] = raw.toString("base64");
}

const asBuffer = (x) => (Buffer.isBuffer(x) ? x : Buffer.from(x == null ? "" : String(x), "utf8"));

/**
 * The dead-letter entry for task (a Buffer), as a Buffer ready to LPUSH onto
 * {ns}:dead.
 */
function formatEntry(reason, detail, task, atMs = Date.now()) {
  const obj = {};
  setBytes(obj, "reason", asBuffer(reason));
  setBytes(obj, "detail", asBuffer(detail));
  obj.at_ms = Math.trunc(atMs);
  task = asBuffer(task);
  if (validUtf8(task)) {
    const entry = Buffer.from(JSON.stringify({ ...obj, task: task.toString("utf8") }), "utf8");
    if (entry.length <= Math.floor(task.length / 3) * 4 + 4 + 1024) return entry;
  }
  return Buffer.from(JSON.stringify({ ...obj, task_base64: task.toString("base64") }), "utf8");
}

/**
 * A dead-letter entry as an object, with task, detail and reason as the
 * exact original bytes (Buffers), whichever field carried them.
 */
function parseEntry(entry) {
  const obj = JSON.parse(Buffer.isBuffer(entry) ? entry.toString("utf8") : entry);
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Error("a dead letter is a JSON object");
  const out = { ...obj };
  for (const name of ["task", "detail", "reason"]) {
    if (typeof obj[name + "_base64"] === "string") out[name] = Buffer.from(obj[name + "_base64"], "base64");
    else if (typeof obj[name] === "string") out[name] = Buffer.from(obj[name], "utf8");
    delete out[name + "_base64"];
  }
  return out;
}

module.exports = { formatEntry, parseEntry };
