#!/usr/bin/env bash
# What to take from a real server when one is lent (a GPU machine, say), in
# one short read-only run:
#
#   sudo bench/device.sh OUT [P2PDOCTOR]      (P2PDOCTOR: default
#                                              target/release/p2pdoctor)
#
# Into OUT it writes:
#   - machine.txt: uname, CPUs, memory, kernel command line, tool versions;
#   - snapshot.tar.gz: `p2pdoctor snapshot --redact` (serials, NQNs, MACs,
#     UUIDs and the host name replaced), fit to keep as a test fixture;
#   - lspci-vvv.txt, lspci-tvnn.txt, lspci-nn.txt, lspci-xxxx.txt: what
#     users paste into tickets (evidence fixtures). lspci-xxxx.txt holds
#     raw config space, serial numbers included: look at it before keeping;
#   - nvidia-smi-topo-m.txt, nvidia-smi-topo-p2p-r.txt, nvidia-smi-gpus.csv:
#     the vendor's view, where nvidia-smi is installed;
#   - topo.json, check.json, check.txt: what p2pdoctor says of the live
#     machine (check reads nvidia-smi's matrix beside its own and reports
#     any disagreement as P2P803/P2P805);
#   - timing.txt: medians of 5 warm runs of `p2pdoctor topo --format json`
#     (live: config space read in parts) and `lspci -vvv`, the same for
#     `check --format json`, and, with P2PDOCTOR_DEVICE_RBIND=1, topo through
#     an rbind mount of / (not live: config space read whole), which shows
#     what reading config space in parts saves on real hardware.
#
# Nothing is written outside OUT (the rbind mount, when asked for, is
# unmounted at the end); no block device is opened for writing: `check`
# runs without --confirm. Each step is bounded by `timeout`.
set -uo pipefail
out=${1:?usage: bench/device.sh OUT [P2PDOCTOR]}
bin=${2:-target/release/p2pdoctor}
[ -x "$bin" ] || { echo "device.sh: $bin is not an executable p2pdoctor (build it, or give its path)" >&2; exit 2; }
mkdir -p "$out" || exit 2
step() { # step SECONDS FILE CMD...: CMD's output into OUT/FILE, its stderr beside
    local secs=$1 file=$2; shift 2
    timeout "$secs" "$@" > "$out/$file" 2> "$out/$file.err"
    local rc=$?
    [ -s "$out/$file.err" ] || rm -f "$out/$file.err"
    echo "$rc $file: $*" >> "$out/steps.txt"
    return 0
}
have() { command -v "$1" >/dev/null; }

{
    echo "date: $(date -u +%FT%TZ)"
    uname -a
    echo "cpus: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo
    grep MemTotal /proc/meminfo
    echo "cmdline: $(cat /proc/cmdline)"
    echo "p2pdoctor: $("$bin" --version)"
    have lspci && echo "lspci: $(lspci --version)"
    have nvidia-smi && nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1 | sed 's/^/nvidia driver: /'
    echo "pci functions: $(ls /sys/bus/pci/devices | wc -l)"
    echo "euid: $(id -u)"
} > "$out/machine.txt" 2>&1

step 120 snapshot.log "$bin" snapshot --redact -o "$out/snapshot.tar.gz" --force
if have lspci; then
    step 60 lspci-vvv.txt lspci -vvv
    step 60 lspci-tvnn.txt lspci -tvnn
    step 60 lspci-nn.txt lspci -nn
    step 60 lspci-xxxx.txt lspci -xxxx
fi
if have nvidia-smi; then
    step 60 nvidia-smi-topo-m.txt nvidia-smi topo -m
    step 60 nvidia-smi-topo-p2p-r.txt nvidia-smi topo -p2p r
    step 60 nvidia-smi-gpus.csv nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader
fi
step 60 topo.json "$bin" --no-names topo --format json
step 120 check.json "$bin" check --format json
step 120 check.txt "$bin" --color never check

# Medians of 5 warm runs, in milliseconds (bash's EPOCHREALTIME: no Python
# needed on the machine).
median() { # median NAME CMD...
    local name=$1; shift
    local t=() i a b
    timeout 60 "$@" >/dev/null 2>&1
    for i in 1 2 3 4 5; do
        a=$EPOCHREALTIME
        timeout 60 "$@" >/dev/null 2>&1
        b=$EPOCHREALTIME
        t+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n 3p | awk -v n="$name" '{ print n ": " $0 " ms" }'
}
{
    median "p2pdoctor topo --format json (live, config in parts)" "$bin" --no-names topo --format json
    median "p2pdoctor check --format json (live)" "$bin" check --format json
    have lspci && median "lspci -vvv" lspci -vvv
    if [ "${P2PDOCTOR_DEVICE_RBIND:-}" = 1 ]; then
        mnt=$(mktemp -d)
        # rslave at once: with / shared (systemd's default) the unmount
        # below would otherwise propagate back and take /sys, /proc and
        # /dev off the machine itself.
        if mount --rbind / "$mnt" && mount --make-rslave "$mnt"; then
            median "p2pdoctor topo --format json (through an rbind of /, config whole)" "$bin" --no-names --root "$mnt" topo --format json
            umount -R "$mnt" || umount -l "$mnt"
        else
            echo "rbind mount of / failed: no whole-config timing"
        fi
        rmdir "$mnt" 2>/dev/null
    fi
} > "$out/timing.txt" 2>&1
echo "device.sh: wrote $out ($(ls "$out" | wc -l) files); steps and exit codes in $out/steps.txt"
