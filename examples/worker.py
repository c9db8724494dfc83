#!/usr/bin/python3
"""A slotd worker in Python, following docs/protocol.md and nothing else.

    worker.py --port 6379 --namespace slotd --id w1 [--ttl-ms 3000] [--log FILE]
    worker.py --sentinels 10.0.0.1:26379,10.0.0.2:26379 --sentinel-master slotd --id w1 ...

Registers, heartbeats, takes tasks one at a time from its queue into its
in-flight list, "processes" them (prints them, or appends them to --log),
acknowledges with LREM, and deregisters on SIGTERM/SIGINT.

With --sentinels it finds the master through Redis Sentinel (redis-py's
redis.sentinel.Sentinel) and follows it through failovers as protocol.md
("Redis Sentinel") says: every command has a timeout, ROLE must say master,
and a lost connection or a reply that says "not the master" (READONLY,
UNBLOCKED, MASTERDOWN, LOADING, NOREPLICAS) means: find the master again.
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

# Replies that mean the server is not (or no longer) the writable master.
WRONG_SERVER = ("READONLY", "UNBLOCKED", "MASTERDOWN", "LOADING", "NOREPLICAS")


def connect(args):
    """The master: directly, or as the sentinels say."""
    if not args.sentinels:
        return redis.Redis(host=args.host, port=args.port)
    from redis.sentinel import Sentinel
    addrs = [(h.strip("[]"), int(p)) for h, p in (a.strip().rsplit(":", 1)
                                                  for a in args.sentinels.split(","))]
    # A sentinel is quick or down; a reply of Redis may take the BLMOVE's
    # wait (1 s) and then some.
    sentinels = Sentinel(addrs, sentinel_kwargs={"socket_timeout": 0.5,
                                                 "socket_connect_timeout": 0.5})
    return sentinels.master_for(args.sentinel_master, socket_timeout=4.0,
                                socket_connect_timeout=1.0)


def forget_server(r):
    """Close every connection: the next command finds the master again."""
    r.connection_pool.disconnect()


def wait_for_master(r):
    """ROLE must say master; until it does (a failover under way), wait."""
    while True:
        try:
            if r.execute_command("ROLE")[0] in (b"master", "master"):
                return
        except redis.exceptions.RedisError:
            pass
        forget_server(r)
        time.sleep(0.2)


def retrying(r, sentinel, what):
    """Runs what() until it works. With Sentinel, a lost connection or a
    reply that says "not the master" finds the master again first; without
    it, errors are left to stop the worker."""
    while True:
        try:
            return what()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ResponseError) as e:
            lost = not isinstance(e, redis.exceptions.ResponseError) or str(e).startswith(WRONG_SERVER)
            if not sentinel or not lost:
                raise
            print("worker: %s; finding the master again" % e, file=sys.stderr)
            forget_server(r)
            time.sleep(0.2)
            wait_for_master(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--sentinels", help="host:port,... of Redis Sentinel (instead of host/port)")
    ap.add_argument("--sentinel-master", default="slotd", help="the master's name they know")
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
    r = connect(args)
    sentinel = bool(args.sentinels)
    if sentinel:
        wait_for_master(r)
    beat = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "weight": args.weight})
    stop = threading.Event()    # asked to stop (SIGTERM/SIGINT)
    done = threading.Event()    # the last task is finished: heartbeats end

    def beat_once():
        with r.pipeline(transaction=True) as p:
            p.set(hb, beat, px=args.ttl_ms).sadd(k("workers"), wid).execute()

    def heartbeat():
        # Refresh at a third of the TTL; SADD too, so a worker declared dead
        # while it was only slow comes back as a newcomer.
        while not done.is_set():
            retrying(r, sentinel, beat_once)
            done.wait(args.ttl_ms / 3000.0)

    def recover():
        # Tasks a previous run of this id left in flight (or a take whose
        # reply was lost) go back first, oldest nearest the tail, so they
        # are taken first and in order. This worker holds nothing then.
        while r.lmove(inflight, queue, "LEFT", "RIGHT") is not None:
            pass

    retrying(r, sentinel, recover)
    beating = threading.Thread(target=heartbeat, daemon=True)
    beating.start()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    out = open(args.log, "a", buffering=1) if args.log else sys.stdout
    while not stop.is_set():
        try:
            task = r.blmove(queue, inflight, 1, "RIGHT", "LEFT")
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ResponseError):
            if not sentinel:
                raise
            # The take may have moved a task we never saw: put it back.
            retrying(r, sentinel, recover)
            continue
        if task is None:
            continue
        if args.work_ms:
            time.sleep(args.work_ms / 1000.0)
        out.write("%s\t%s\n" % (wid, task.decode("utf-8", "backslashreplace")))
        retrying(r, sentinel, lambda: r.lrem(inflight, 1, task))

    # Leave: slotd moves our slots (and anything still queued) at once. The
    # heartbeat beats until the last task is done, then stops first, so that
    # it cannot register us again.
    done.set()
    beating.join()

    def leave():
        with r.pipeline(transaction=True) as p:
            p.srem(k("workers"), wid).delete(hb).execute()
    retrying(r, sentinel, leave)


if __name__ == "__main__":
    main()
