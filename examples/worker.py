#!/usr/bin/python3
"""A slotd worker in Python, following docs/protocol.md and nothing else.

    worker.py --port 6379 --namespace slotd --id w1 [--ttl-ms 3000] [--log FILE]

Registers, heartbeats, takes tasks one at a time from its queue into its
in-flight list, "processes" them (prints them, or appends them to --log),
acknowledges with LREM, and deregisters on SIGTERM/SIGINT.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

import redis


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--namespace", default="slotd")
    ap.add_argument("--id", required=True)
    ap.add_argument("--ttl-ms", type=int, default=3000)
    ap.add_argument("--weight", type=int, default=1)
    ap.add_argument("--log", help="append 'id<TAB>task' per completed task here")
    ap.add_argument("--work-ms", type=float, default=0, help="pretend work per task")
    args = ap.parse_args()

    ns, wid = args.namespace, args.id
    k = lambda name: "{%s}:%s" % (ns, name)
    queue, inflight, hb = k("queue:" + wid), k("inflight:" + wid), k("hb:" + wid)
    r = redis.Redis(host=args.host, port=args.port)
    beat = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "weight": args.weight})
    stop = threading.Event()    # asked to stop (SIGTERM/SIGINT)
    done = threading.Event()    # the last task is finished: heartbeats end

    def heartbeat():
        # Refresh at a third of the TTL; SADD too, so a worker declared dead
        # while it was only slow comes back as a newcomer.
        while not done.is_set():
            with r.pipeline(transaction=True) as p:
                p.set(hb, beat, px=args.ttl_ms).sadd(k("workers"), wid).execute()
            done.wait(args.ttl_ms / 3000.0)

    # Tasks a previous run of this id left in flight go back first, oldest
    # nearest the tail, so they are taken first and in order.
    while r.lmove(inflight, queue, "LEFT", "RIGHT") is not None:
        pass
    beating = threading.Thread(target=heartbeat, daemon=True)
    beating.start()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    out = open(args.log, "a", buffering=1) if args.log else sys.stdout
    while not stop.is_set():
        task = r.blmove(queue, inflight, 1, "RIGHT", "LEFT")
        if task is None:
            continue
        if args.work_ms:
            time.sleep(args.work_ms / 1000.0)
        out.write("%s\t%s\n" % (wid, task.decode("utf-8", "backslashreplace")))
        r.lrem(inflight, 1, task)

    # Leave: slotd moves our slots (and anything still queued) at once. The
    # heartbeat beats until the last task is done, then stops first, so that
    # it cannot register us again.
    done.set()
    beating.join()
    with r.pipeline(transaction=True) as p:
        p.srem(k("workers"), wid).delete(hb).execute()


if __name__ == "__main__":
    main()
