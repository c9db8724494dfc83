#!/bin/sh
# Pushes one task per line of standard input onto slotd's intake with
# redis-cli, following docs/protocol.md.
#   echo '{"key":"user:1","op":"charge"}' | ./producer.sh [-h HOST] [-p PORT] [-n NAMESPACE]
set -eu
host=127.0.0.1 port=6379 ns=slotd
while getopts h:p:n: o; do
    case $o in
    h) host=$OPTARG ;;
    p) port=$OPTARG ;;
    n) ns=$OPTARG ;;
    *) echo "usage: $0 [-h HOST] [-p PORT] [-n NAMESPACE] < tasks" >&2; exit 64 ;;
    esac
done
while IFS= read -r task; do
    redis-cli -h "$host" -p "$port" LPUSH "{$ns}:intake" "$task" >/dev/null
done
