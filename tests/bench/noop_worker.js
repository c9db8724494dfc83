"use strict";
// The bench's no-op worker on the Node client (clients/node): records each
// task's id in the order it ran and writes them, one a line, to --out when it
// stops (SIGTERM: it finishes, gives back, leaves).
const fs = require("fs");
const path = require("path");
const slotd = require(path.join(__dirname, "..", "..", "clients", "node"));

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const ran = [];
const worker = new slotd.Worker(async (task) => {
  ran.push(task.json.id);
}, { id: args.id, port: +args.port, namespace: args.namespace });
worker.run().then(() => fs.writeFileSync(args.out, ran.map((i) => `${i}\n`).join("")));
