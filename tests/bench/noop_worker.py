#!/usr/bin/python3
"""The bench's no-op worker on the Python client (clients/python): records
each task's id in the order it ran and writes them, one a line, to --out
when it stops (SIGTERM: it finishes, gives back, leaves)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))

import slotd  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--namespace", required=True)
ap.add_argument("--id", required=True)
ap.add_argument("--out", required=True)
args = ap.parse_args()

ran = []
worker = slotd.Worker(lambda task: ran.append(task.json["id"]), id=args.id, port=args.port,
                      namespace=args.namespace)
worker.run()
with open(args.out, "w") as f:
    f.write("".join("%d\n" % i for i in ran))
