#!/usr/bin/python3
"""Pushes JSON tasks onto slotd's intake, following docs/protocol.md.

    producer.py --port 6379 --namespace slotd --count 300 --keys 30 [--start 0]

Each task is {"key": "user:<n % keys>", "seq": <n>}: the routing key and a
per-producer sequence number.
"""
import argparse
import json

import redis


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--namespace", default="slotd")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--start", type=int, default=0)
    args = ap.parse_args()

    r = redis.Redis(host=args.host, port=args.port)
    intake = "{%s}:intake" % args.namespace
    with r.pipeline(transaction=False) as p:
        for n in range(args.start, args.start + args.count):
            p.lpush(intake, json.dumps({"key": "user:%d" % (n % args.keys), "seq": n}))
        p.execute()


if __name__ == "__main__":
    main()
