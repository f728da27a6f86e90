#!/usr/bin/env bash
# Benchmark: how the pair analysis scales (issue "the house and the scale").
#
#   bench/scale.sh [FUNCTIONS...]     (defaults: 600 4096)
#
# For each size, a server tree from `mkfixture --large N` is analysed with
# `check --all-pairs --format json`; the script prints the endpoints, pairs,
# wall time, peak resident memory (GNU time's %M) and the output's size,
# then `snapshot` and `topo --format json` of the same tree against
# `lspci -vvv` (warm page cache, median of 5), as ratios.
#
# Targets: 563 endpoints (600 functions) under 1 s and 300 MB; 3,584
# endpoints (4,096 requested, 4,168 functions) under 30 s and 1 GB; snapshot
# within 2x of lspci -vvv; topo --format json at least 8x faster than
# lspci -vvv. A run that exceeds P2PDOCTOR_BENCH_LIMIT seconds (default 120)
# or P2PDOCTOR_BENCH_MEM_MB (default 8000) is stopped and reported as such,
# so the benchmark cannot take the machine down.
# Needs pciutils (lspci) and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(600 4096)
limit=${P2PDOCTOR_BENCH_LIMIT:-120}
mem_mb=${P2PDOCTOR_BENCH_MEM_MB:-8000}

command -v lspci >/dev/null || { echo "bench: lspci not found (apt-get install pciutils)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet --bin p2pdoctor --example mkfixture
bin=./target/release/p2pdoctor
export P2PDOCTOR_PCI_IDS=${P2PDOCTOR_PCI_IDS-/usr/share/misc/pci.ids}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure NAME CMD...: wall seconds, peak RSS in MB and exit status of one
# run, its standard output to $work/out, bounded in time and memory.
measure() {
    local name=$1; shift
    local rc=0
    ( ulimit -v $((mem_mb * 1024)); exec timeout "$limit" /usr/bin/time -f '%e %M' -o "$work/time" "$@" ) \
        >"$work/out" 2>"$work/err" || rc=$?
    # GNU time puts "Command exited with non-zero status N" first.
    read -r secs kb < <(tail -n 1 "$work/time") || { secs=?; kb=0; }
    case $rc in
        124) echo "$name: stopped after ${limit} s" ;;
        0|1|2) printf '%-44s %8s s %8d MB peak %10d bytes out\n' "$name" "$secs" $((kb / 1024)) "$(stat -c %s "$work/out")" ;;
        *) echo "$name: failed with exit status $rc (memory limit ${mem_mb} MB?): $(tail -n 1 "$work/err")" ;;
    esac
}

median() { # median of 5 warm runs of CMD..., in seconds
    python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
argv = sys.argv[1:]
subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
times = []
for _ in range(5):
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append(time.perf_counter() - t)
print(f"{statistics.median(times):.4f}")
PY
}

for n in "${sizes[@]}"; do
    root="$work/root-$n"
    ./target/release/examples/mkfixture --large "$n" "$root" >/dev/null
    functions=$(ls "$root/sys/bus/pci/devices" | wc -l)
    echo "== mkfixture --large $n: $functions PCI functions"
    # P2PDOCTOR_BENCH_SKIP_PAIRS=1 leaves out the all-pairs run (the
    # longest) to time only the scan against lspci.
    if [ -z "${P2PDOCTOR_BENCH_SKIP_PAIRS:-}" ]; then
        measure "check --all-pairs --format json" "$bin" --root "$root" check --all-pairs --format json
        python3 - "$work/out" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
print(f"   {len(d.get('devices', []))} devices in pairs, {d['summary']['pairs']} pairs")
PY
    fi
    measure "check (default selection) --format text" "$bin" --root "$root" check
    lspci_vvv=(lspci -D -vvv -A linux-sysfs -O "sysfs.path=$root/sys/bus/pci")
    t_lspci=$(median "${lspci_vvv[@]}")
    t_topo=$(median "$bin" --root "$root" topo --format json)
    t_snap=$(median "$bin" --root "$root" snapshot -o "$work/snap.tar.gz" --force)
    python3 - "$t_lspci" "$t_topo" "$t_snap" <<'PY'
import sys
l, t, s = map(float, sys.argv[1:])
print(f"   lspci -vvv {l*1000:.1f} ms; topo --format json {t*1000:.1f} ms ({l/t:.1f}x faster, target 8x); snapshot {s*1000:.1f} ms ({s/l:.2f}x lspci, target <= 2x)")
PY
    # Where the time goes, per PCI function (medians of 5 warm runs): CPU
    # time (user + system, all threads, from wait4), the cores it kept busy
    # (CPU time / wall time) and, if strace is installed, system calls.
    # The wall ratio above is about the CPU ratio times the cores topo
    # keeps busy (lspci uses one): 8x on 2 cores needs a CPU ratio of 4x
    # or more with both cores busy throughout.
    cost() { # cost NAME CMD...
        local name=$1; shift
        local calls=""
        if command -v strace >/dev/null; then
            strace -f -c -o "$work/strace" "$@" >/dev/null 2>&1 || true
            calls=$(awk '$NF == "total" {print $4}' "$work/strace")
        fi
        python3 - "$name" "$functions" "$calls" "$@" <<'PY'
import os, statistics, subprocess, sys, time
name, n, calls, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def once():
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime
once()
runs = [once() for _ in range(5)]
wall = statistics.median(w for w, _ in runs)
cpu = statistics.median(c for _, c in runs)
per = f"{int(calls) / n:.0f} system calls, " if calls else ""
print(f"   {name}: {per}{cpu * 1e6 / n:.0f} us CPU per function, {cpu / wall:.2f} cores busy")
PY
    }
    cost "lspci -vvv" "${lspci_vvv[@]}"
    cost "topo --format json" "$bin" --root "$root" topo --format json
done
