#!/bin/sh
# Runs test binaries (Check suites), prints each one's summary and how long
# it took, and one closing line "N passed, N failed" over all of them. Exits non-zero on any failure.
set -u
passed=0
failed=0
status=0
for t in "$@"; do
    start=$(date +%s)
    case $t in
    *.sh)
        # A script test: one check, passed when it exits 0.
        out=$(sh "$t" 2>&1)
        rc=$?
        if [ $rc -eq 0 ]; then
            passed=$((passed + 1))
            echo "ok   $(basename "$t") ($(( $(date +%s) - start )) s)"
        else
            printf '%s\n' "$out" | tail -40
            echo "FAIL $(basename "$t") (exit $rc)"
            failed=$((failed + 1))
            status=1
        fi
        continue
        ;;
    esac
    out=$("$t" 2>&1)
    rc=$?
    summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -1)
    if [ -z "$summary" ]; then
        printf '%s\n' "$out" | tail -40
        echo "FAIL $t: no Check summary (exit $rc)"
        failed=$((failed + 1))
        status=1
        continue
    fi
    checks=$(echo "$summary" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    fails=$(echo "$summary" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    errs=$(echo "$summary" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    bad=$((fails + errs))
    passed=$((passed + checks - bad))
    failed=$((failed + bad))
    if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ]; then
        printf '%s\n' "$out" | grep -vE '^Running suite' | tail -60
        echo "FAIL $(basename "$t"): $summary (exit $rc)"
        [ "$bad" -eq 0 ] && failed=$((failed + 1))
        status=1
    else
        echo "ok   $(basename "$t"): $summary ($(( $(date +%s) - start )) s)"
    fi
done
echo "$passed passed, $failed failed"
exit $status
