#!/usr/bin/python3
"""Pushes JSON tasks onto slotd's intake, following docs/protocol.md.

    producer.py --port 6379 --namespace slotd --count 300 --keys 30 [--start 0]
    producer.py --sentinels 10.0.0.1:26379,10.0.0.2:26379 --sentinel-master slotd \\
                [--wait-replicas 1] ...
    producer.py --shards 4 ...

Each task is {"key": "user:<n % keys>", "seq": <n>}: the routing key and a
per-producer sequence number.

With --shards N (slotd's `shards: N`, N > 1) each task goes to the intake of
its shard, {<namespace>#<i>}:intake, by the rule of docs/shards.md: i is the
Redis Cluster slot of its key (CRC16, hash tags) times N, divided by 16384.

With --sentinels the master is found through Redis Sentinel (redis-py's
redis.sentinel.Sentinel); a push that fails on a failover is pushed again
on the new master (so a task whose reply was lost may be there twice).
--wait-replicas N waits until N replicas have the pushes (WAIT): only then
does a failover keep them.
"""
import argparse
import binascii
import json
import sys
import time

import redis


def shard_of(key, shards):
    """The shard of a routing key (docs/shards.md): its slot, CRC16-XMODEM
    (binascii.crc_hqx from 0) of the key or of its {hash tag}, mod 16384;
    then slot * shards // 16384."""
    k = key.encode()
    start = k.find(b"{")
    end = k.find(b"}", start + 1) if start >= 0 else -1
    if end > start + 1:
        k = k[start + 1:end]
    return (binascii.crc_hqx(k, 0) & 16383) * shards // 16384


def connect(args):
    if not args.sentinels:
        return redis.Redis(host=args.host, port=args.port)
    from redis.sentinel import Sentinel
    addrs = [(h.strip("[]"), int(p)) for h, p in (a.strip().rsplit(":", 1)
                                                  for a in args.sentinels.split(","))]
    sentinels = Sentinel(addrs, sentinel_kwargs={"socket_timeout": 0.5,
                                                 "socket_connect_timeout": 0.5})
    return sentinels.master_for(args.sentinel_master, socket_timeout=3.0,
                                socket_connect_timeout=1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--sentinels", help="host:port,... of Redis Sentinel (instead of host/port)")
    ap.add_argument("--sentinel-master", default="slotd", help="the master's name they know")
    ap.add_argument("--wait-replicas", type=int, default=0,
                    help="after the pushes, WAIT until this many replicas have them")
    ap.add_argument("--namespace", default="slotd")
    ap.add_argument("--shards", type=int, default=1, help="slotd's shards: N (1: not split)")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--start", type=int, default=0)
    args = ap.parse_args()

    r = connect(args)
    def intake(key):
        if args.shards <= 1:
            return "{%s}:intake" % args.namespace
        return "{%s#%d}:intake" % (args.namespace, shard_of(key, args.shards))

    tasks = [("user:%d" % (n % args.keys), n) for n in range(args.start, args.start + args.count)]
    while True:
        try:
            with r.pipeline(transaction=False) as p:
                for key, seq in tasks:
                    p.lpush(intake(key), json.dumps({"key": key, "seq": seq}))
                if args.wait_replicas:
                    p.execute_command("WAIT", args.wait_replicas, 1000)
                replies = p.execute()
            break
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ReadOnlyError) as e:
            if not args.sentinels:
                raise
            # A failover: the master is found again at the next command. The
            # tasks that did land are pushed once more (at least once).
            print("producer: %s; pushing again on the master" % e, file=sys.stderr)
            r.connection_pool.disconnect()
            time.sleep(0.2)
    if args.wait_replicas and replies[-1] < args.wait_replicas:
        print("producer: only %d replicas have the tasks; a failover now could lose them"
              % replies[-1], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
