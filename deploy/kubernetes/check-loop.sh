#!/bin/sh
# Runs `p2pdoctor check --format prometheus` every P2PDOCTOR_INTERVAL
# seconds and leaves the result in P2PDOCTOR_TEXTFILE_DIR/p2pdoctor.prom
# for node_exporter's textfile collector. p2pdoctor writes the file
# atomically (a hidden temporary beside it, then renamed), so the collector
# never reads half a file.
#
# check exits 1 or 2 for warnings or errors: results, written like any
# other. Exit 3 is a failure of p2pdoctor itself: the previous file is kept
# (its p2pdoctor_last_run_timestamp_seconds shows its age) and the failure
# is logged. P2PDOCTOR_ONCE=1 runs once and exits with 0, or 3 on failure.
set -u
interval=${P2PDOCTOR_INTERVAL:-600}
dir=${P2PDOCTOR_TEXTFILE_DIR:-/var/lib/node-exporter/textfile}
bin=${P2PDOCTOR_BIN:-p2pdoctor}
args=${P2PDOCTOR_ARGS:-}

while :; do
    # $args is split into words on purpose (several options).
    # shellcheck disable=SC2086
    "$bin" check --format prometheus $args -o "$dir/p2pdoctor.prom"
    rc=$?
    if [ "$rc" -ge 3 ]; then
        echo "p2pdoctor check failed (exit $rc); $dir/p2pdoctor.prom keeps the previous result" >&2
    fi
    if [ "${P2PDOCTOR_ONCE:-0}" = 1 ]; then
        [ "$rc" -ge 3 ] && exit 3
        exit 0
    fi
    sleep "$interval"
done
