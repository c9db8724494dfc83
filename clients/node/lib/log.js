"use strict";
/*
 * The default logger: one line per event on standard error, with the time
 * and level, as slotd's own lines are ("2026-12-02T02:30:10.903Z
 * slotd-worker[4242] info: ..."). Pass `logger` to use your own
 * ({ error, warn, info, debug }, each a function of a string).
 */
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 };

function makeLogger(level = "info", write = (line) => process.stderr.write(line)) {
  const max = LEVELS[level] ?? 2;
  const out = {};
  for (const [name, n] of Object.entries(LEVELS)) {
    out[name] = n <= max ? (msg) => write(`${new Date().toISOString()} slotd-worker[${process.pid}] ${name}: ${msg}\n`) : () => {};
  }
  return out;
}

module.exports = { makeLogger };
