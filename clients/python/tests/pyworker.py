"""A test worker on the slotd library: logs "worker id key attempt" per task
it runs to a shared file (one O_APPEND write each, so the file's order is
the order the tasks ran in, across processes), then maybe sleeps or fails.

    pyworker.py --config FILE --id ID --log FILE [--concurrency N] [--pool threads|processes]
                [--sleep-ms MS] [--fail ID[:N],...] [--prefetch N] [--max-attempts N]
"""
import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import slotd  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--config", required=True)
ap.add_argument("--id", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--concurrency", type=int, default=1)
ap.add_argument("--pool", default="threads")
ap.add_argument("--sleep-ms", type=float, default=0)
ap.add_argument("--fail", default="", help="ID[:N],...: task ids that raise (on their first N attempts)")
ap.add_argument("--prefetch", type=int)
ap.add_argument("--max-attempts", type=int)
args = ap.parse_args()

fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
fail = {int(x.split(":")[0]): int((x + ":1000").split(":")[1]) for x in args.fail.split(",") if x}
SLEEP = args.sleep_ms / 1000.0


def handle(task: slotd.Task) -> None:
    body = task.json
    os.write(fd, ("%s %d %s %d\n" % (task.worker_id, body["id"], body["key"], task.attempt)).encode())
    if SLEEP:
        time.sleep(SLEEP)
    if task.attempt <= fail.get(body["id"], 0):
        raise RuntimeError("task %d fails on attempt %d" % (body["id"], task.attempt))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    worker = slotd.Worker(handle, config=args.config, id=args.id, concurrency=args.concurrency, pool=args.pool,
                          prefetch=args.prefetch, max_attempts=args.max_attempts, retry_min_ms=20,
                          retry_max_ms=100)
    worker.run()
    print("exited cleanly", flush=True)
