#!/usr/bin/env bash
# Benchmark: `p2pdoctor topo --format json` on a generated 4096-function
# server tree, against `lspci -vvv` reading the same tree.
#
#   bench/topo.sh [FUNCTIONS] [RUNS]      (defaults: 4096 functions, 15 runs)
#
# Prints the median wall time of each and the ratio. Target: p2pdoctor under
# 100 ms and at least 5x faster than lspci. Needs pciutils (lspci).
set -euo pipefail
cd "$(dirname "$0")/.."
functions=${1:-4096}
runs=${2:-15}

command -v lspci >/dev/null || { echo "bench: lspci not found (apt-get install pciutils)" >&2; exit 1; }
cargo build --release --quiet --bin p2pdoctor --example mkfixture
work=$(mktemp -d -p "$( [ -d /dev/shm ] && echo /dev/shm || echo /tmp)")
trap 'rm -rf "$work"' EXIT
./target/release/examples/mkfixture --large "$functions" "$work/root" >/dev/null
count=$(ls "$work/root/sys/bus/pci/devices" | wc -l)

python3 - "$work/root" "$runs" "$count" <<'PY'
import os, statistics, subprocess, sys, time
root, runs, count = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = dict(os.environ, P2PDOCTOR_PCI_IDS=os.environ.get("P2PDOCTOR_PCI_IDS", "/usr/share/misc/pci.ids"))
cmds = {
    "p2pdoctor topo --format json": ["./target/release/p2pdoctor", "--root", root, "topo", "--format", "json"],
    "lspci -vvv": ["lspci", "-D", "-vvv", "-A", "linux-sysfs", "-O", f"sysfs.path={root}/sys/bus/pci"],
}
med = {}
for name, argv in cmds.items():
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # warm the page cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            sys.exit(f"bench: {name} failed with {r.returncode}")
    med[name] = statistics.median(times)
    print(f"{name:32} median {med[name]*1000:8.1f} ms  (min {min(times)*1000:.1f}, max {max(times)*1000:.1f}, {runs} runs)")
ratio = med["lspci -vvv"] / med["p2pdoctor topo --format json"]
print(f"tree: {count} PCI functions; p2pdoctor is {ratio:.1f}x faster than lspci -vvv")
ok = med["p2pdoctor topo --format json"] < 0.100 and ratio >= 5
print("target (under 100 ms, at least 5x lspci):", "met" if ok else "NOT met")
PY
