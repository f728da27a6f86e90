#!/usr/bin/env bash
# Benchmark: `p2pdoctor --root lspci.txt check --format json` on the
# `lspci -vvv -xxxx` text of a generated 4096-function server tree, against
# the time `lspci -vvv -xxxx` takes to print that text.
#
#   bench/lspci.sh [FUNCTIONS] [RUNS]      (defaults: 4096 functions, 15 runs)
#
# Prints the median wall time of each and the ratio. Target: p2pdoctor at
# least 5x faster than lspci. Needs pciutils (lspci).
set -euo pipefail
cd "$(dirname "$0")/.."
functions=${1:-4096}
runs=${2:-15}

command -v lspci >/dev/null || { echo "bench: lspci not found (apt-get install pciutils)" >&2; exit 1; }
cargo build --release --quiet --bin p2pdoctor --example mkfixture
work=$(mktemp -d -p "$( [ -d /dev/shm ] && echo /dev/shm || echo /tmp)")
trap 'rm -rf "$work"' EXIT
./target/release/examples/mkfixture --large "$functions" "$work/root" >/dev/null
lspci -A linux-sysfs -O sysfs.path="$work/root/sys/bus/pci" -vvv -xxxx >"$work/lspci.txt" 2>/dev/null
echo "lspci -vvv -xxxx of $functions functions: $(du -m "$work/lspci.txt" | cut -f1) MB, $(wc -l <"$work/lspci.txt") lines"

python3 - "$work" "$runs" <<'PY'
import os, statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, P2PDOCTOR_PCI_IDS=os.environ.get("P2PDOCTOR_PCI_IDS", "/usr/share/misc/pci.ids"))
cmds = {
    "lspci -vvv -xxxx (printing it)": (["lspci", "-A", "linux-sysfs", "-O", f"sysfs.path={work}/root/sys/bus/pci", "-vvv", "-xxxx"], (0,)),
    "p2pdoctor --root lspci.txt check": (["./target/release/p2pdoctor", "--root", f"{work}/lspci.txt", "check", "--format", "json"], (0, 1, 2)),
}
med = {}
for name, (argv, ok) in cmds.items():
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # warm the page cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t)
        if r.returncode not in ok:
            sys.exit(f"bench: {name} failed with {r.returncode}")
    med[name] = statistics.median(times)
    print(f"{name:36} median {med[name]*1000:8.1f} ms  (min {min(times)*1000:.1f}, max {max(times)*1000:.1f}, {runs} runs)")
a, b = med.values()
print(f"ratio: p2pdoctor is {a / b:.1f}x faster than lspci printing the text (target: 5x)")
PY
