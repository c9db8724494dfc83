#!/bin/sh
# make demo: a private redis-server on a free loopback port, slotd, three
# slotd-workers; tasks routed by key; one worker killed and its slots and
# tasks moving to the others; a fourth joining, its slots fenced until the
# old owners finish what they hold; per-key order checked over the run.
# Stops everything it started, and only that.
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SLOTD="$ROOT/$BUILD/slotd"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/slotd-demo.XXXXXX")
PIDS=""
REDIS_PID=""
NS=demo
# Debian's python3, which has python3-redis (not another python3 on PATH).
PY=${PYTHON:-/usr/bin/python3}

cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rcli() { redis-cli -p "$PORT" "$@"; }

PORT=$(free_port)
say "redis-server on 127.0.0.1:$PORT (private, in $TMP)"
redis-server --bind 127.0.0.1 --port "$PORT" --dir "$TMP" --save "" --appendonly no \
    --logfile "$TMP/redis.log" --daemonize no &
REDIS_PID=$!
i=0
until rcli PING >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "redis-server did not start"; exit 1; }
    sleep 0.05
done

HTTP_PORT=$(free_port)
cat > "$TMP/slotd.yaml" <<EOF
redis:
  host: 127.0.0.1
  port: $PORT
namespace: $NS
workers:
  check_interval_ms: 200
  heartbeat_ttl_ms: 1500
http:
  listen: 127.0.0.1:$HTTP_PORT
EOF
say "slotd -c slotd.yaml"
cat "$TMP/slotd.yaml"
"$SLOTD" -c "$TMP/slotd.yaml" 2>"$TMP/slotd.log" &
PIDS="$PIDS $!"

# Each worker runs a tiny command per task: it records who ran which key.
TASK_CMD="read -r t || true; sleep 0.01; echo \"\$SLOTD_WORKER_ID\t\$t\" >> $TMP/done.log"
for w in w1 w2 w3; do
    "$ROOT/$BUILD/slotd-worker" -c "$TMP/slotd.yaml" --id $w -j 2 -- sh -c "$TASK_CMD" \
        2>"$TMP/worker-$w.log" &
    eval "PID_$w=\$!"
    PIDS="$PIDS $!"
done
sleep 1
say "three workers registered; the slot table ({$NS}:slots)"
rcli HGETALL "{$NS}:slots" | paste - -

wait_done() {
    want=$1; i=0
    while [ "$(wc -l < "$TMP/done.log" 2>/dev/null || echo 0)" -lt "$want" ]; do
        i=$((i + 1)); [ $i -gt 300 ] && { echo "timed out waiting for $want tasks"; return 1; }
        sleep 0.05
    done
}

say "pushing 300 tasks for 12 keys (user:0 .. user:11)"
"$PY" "$ROOT/examples/producer.py" --port "$PORT" --namespace $NS --count 300 --keys 12
wait_done 300
say "which worker got which keys (every key went to exactly one worker)"
sed -E 's/^([^\t]+)\t.*"key": ?"([^"]+)".*/\1 \2/' "$TMP/done.log" | sort | uniq -c |
    awk '{printf "  %s  %-8s %3d tasks\n", $2, $3, $1}'

say "killing worker w2 with SIGKILL (no goodbye; its heartbeat expires in 1.5 s)"
eval "kill -9 \$PID_w2"
"$PY" "$ROOT/examples/producer.py" --port "$PORT" --namespace $NS --count 300 --keys 12 --start 300
sleep 2.5
wait_done 600
say "slotd's log of the failover"
grep -E 'died|requeued|epoch|joined' "$TMP/slotd.log" | sed 's/^/  /'
say "the slot table now"
rcli HGETALL "{$NS}:slots" | paste - -
say "tasks of the second round by worker and key: w2's keys now go to w1 and w3"
tail -n 300 "$TMP/done.log" | sed -E 's/^([^\t]+)\t.*"key": ?"([^"]+)".*/\1 \2/' | sort | uniq -c |
    awk '{printf "  %s  %-8s %3d tasks\n", $2, $3, $1}'
say "worker w4 joins while w1 and w3 still hold tasks: the slots it takes are fenced"
"$PY" "$ROOT/examples/producer.py" --port "$PORT" --namespace $NS --count 300 --keys 12 --start 600
"$ROOT/$BUILD/slotd-worker" -c "$TMP/slotd.yaml" --id w4 -j 2 -- sh -c "$TASK_CMD" \
    2>"$TMP/worker-w4.log" &
PIDS="$PIDS $!"
wait_done 900
sleep 0.5
echo "  (until w1 and w3 have finished the tasks they hold of those slots, the slots' newer"
echo "   tasks wait at slotd: one key never runs on two workers at once, nor out of order)"
grep -E 'w4 joined|handed off|finished the tasks' "$TMP/slotd.log" | sed 's/^/  /'
say "tasks of the third round by worker and key: w4 has some keys now"
tail -n 300 "$TMP/done.log" | sed -E 's/^([^\t]+)\t.*"key": ?"([^"]+)".*/\1 \2/' | sort | uniq -c |
    awk '{printf "  %s  %-8s %3d tasks\n", $2, $3, $1}'
say "slotctl workers (the operator's view)"
"$ROOT/$BUILD/slotctl" -c "$TMP/slotd.yaml" workers
say "slotd's /healthz (the dashboard is at http://127.0.0.1:$HTTP_PORT/ while slotd runs)"
curl -s "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null || echo "(curl not installed)"
say "per-key order over the whole run (a task re-run after the kill -9 counted once)"
"$PY" - "$TMP/done.log" <<'PYEOF'
import json, sys
last, seen, late = {}, set(), 0
for line in open(sys.argv[1]):
    task = json.loads(line.rstrip("\n").split("\t", 1)[1])
    if task["seq"] in seen:
        continue
    seen.add(task["seq"])
    late += task["seq"] < last.get(task["key"], -1)
    last[task["key"]] = task["seq"]
print("  every key's tasks ran in the order they were pushed" if late == 0
      else "  %d tasks ran out of order" % late)
sys.exit(1 if late else 0)
PYEOF
total=$(wc -l < "$TMP/done.log")
distinct=$(cut -f2 "$TMP/done.log" | sort -u | wc -l)
say "pushed 900 tasks; completed $total ($distinct distinct); intake $(rcli LLEN "{$NS}:intake"), dead letters $(rcli LLEN "{$NS}:dead")"
