#!/usr/bin/env bash
# Benchmark: `p2pdoctor fleet` over N generated snapshots (default 1000),
# with wall time and peak memory from /usr/bin/time -v.
#
#   bench/fleet.sh [NODES] [JOBS]
#
# The snapshots come from examples/mkfleet.rs (p2pdoctor_fixture::fleet:
# two machine models and variants with ACS cleared, a narrow link, a missing
# NVMe, renumbered buses; each node with its own host name, serials and
# root=UUID). Target: 1,000 nodes in seconds, peak memory bounded (it must
# not grow with the number of nodes: run with 100 and 1000 to compare).
# Needs GNU time (apt-get install time).
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-1000}
jobs=${2:-}

[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet --bin p2pdoctor --example mkfleet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
./target/release/examples/mkfleet "$nodes" "$work/snapshots"
echo "snapshots: $(du -sh "$work/snapshots" | cut -f1) in $nodes files"

args=(fleet "$work/snapshots" --format json -o "$work/fleet.json")
[ -n "$jobs" ] && args+=(--jobs "$jobs")
set +e
/usr/bin/time -v ./target/release/p2pdoctor "${args[@]}" 2>"$work/time.txt"
code=$?
set -e
grep -E "Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" "$work/time.txt"
echo "exit status: $code (1: outliers found, as generated)"
python3 - "$work/fleet.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"families: {len(d['families'])}; outlier nodes: {d['outlier_nodes']}; unreadable: {len(d['unreadable'])}")
for f in d["families"]:
    print(f"  family {f['family']}: {f['nodes']} nodes, {f['majority']} like {f['representative']}, {len(f['outliers'])} outlier groups")
PY
