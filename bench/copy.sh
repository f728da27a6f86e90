#!/usr/bin/env bash
# Benchmark: the copy engine against fio on the same RAM-backed loop device
# (or file), host mode, same block size and queue depth, sequential O_DIRECT
# reads, time-based.
#
#   sudo bench/copy.sh [BS] [QD] [SECONDS] [TRIALS]   (defaults: 128k 32 5 3)
#
# Prints each tool's median throughput and the ratio. Target: p2pdoctor
# within 10% of fio. Needs fio (apt-get install fio); root for the loop
# device (without root it uses a file in /dev/shm).
set -euo pipefail
cd "$(dirname "$0")/.."
bs=${1:-128k}
qd=${2:-32}
secs=${3:-5}
trials=${4:-3}
size=1G

command -v fio >/dev/null || { echo "bench: fio not found (apt-get install fio)" >&2; exit 1; }
cargo build --release --quiet --bin p2pdoctor
work=$(mktemp -d -p /dev/shm)
dev=""
cleanup() { [ -n "$dev" ] && losetup -d "$dev" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
dd if=/dev/urandom of="$work/disk.img" bs=1M count=1024 status=none
if [ "$(id -u)" = 0 ] && dev=$(losetup -f --show "$work/disk.img" 2>/dev/null); then
  target=$dev
else
  dev=""
  target=$work/disk.img
fi
export P2PDOCTOR_JOURNAL_DIR=$work/journal

python3 - "$target" "$bs" "$qd" "$secs" "$trials" "$size" <<'PY'
import json, statistics, subprocess, sys
target, bs, qd, secs, trials, size = sys.argv[1:]
trials = int(trials)

def fio(engine):
    out = subprocess.run(
        ["fio", "--name=bench", f"--filename={target}", "--rw=read", f"--bs={bs}",
         f"--iodepth={qd}", f"--ioengine={engine}", "--direct=1", f"--size={size}",
         "--time_based", f"--runtime={secs}", "--output-format=json"],
        check=True, capture_output=True, text=True).stdout
    job = json.loads(out)["jobs"][0]["read"]
    return job["io_bytes"] / (job["runtime"] / 1000) / 1e9

def ours(engine):
    out = subprocess.run(
        ["./target/release/p2pdoctor", "copy", target, "--host", "--no-verify",
         "--chunk", bs, "--qd", qd, "--engine", engine, "--size", size,
         "--duration", f"{secs}s", "--format", "json", "--quiet"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["main"]["gbps"]

print(f"target {target}, bs {bs}, qd {qd}, {secs} s per run, {trials} trials (median)")
rows = [("fio io_uring", lambda: fio("io_uring")),
        ("p2pdoctor uring", lambda: ours("uring")),
        ("fio libaio", lambda: fio("libaio")),
        ("p2pdoctor threads", lambda: ours("threads"))]
res = {}
for name, f in rows:
    vals = [f() for _ in range(trials)]
    res[name] = statistics.median(vals)
    print(f"{name:20} {res[name]:7.2f} GB/s   ({', '.join(f'{v:.2f}' for v in vals)})")
r = res["p2pdoctor uring"] / res["fio io_uring"]
print(f"p2pdoctor uring / fio io_uring = {r:.3f}  (target: at least 0.90)")
print(f"p2pdoctor threads / fio libaio = {res['p2pdoctor threads'] / res['fio libaio']:.3f}")
PY
