#!/bin/sh
# Slurm node-health prolog: `p2pdoctor check` before every job; a node whose
# P2P state fails the check is drained (slurmd drains a node whose Prolog
# exits non-zero and requeues the job). See README.md beside this file.
#
#   P2PDOCTOR          the binary (default: /usr/local/bin/p2pdoctor)
#   P2PDOCTOR_FAIL_ON  error (default: only errors drain) or warning
#   P2PDOCTOR_ARGS     extra check arguments, e.g.
#                      "--baseline /etc/p2pdoctor/good.json --policy /etc/p2pdoctor/p2p.toml"
#   P2PDOCTOR_TIMEOUT  seconds before the check is given up (default: 30)
#   P2PDOCTOR_STRICT   1: also drain when p2pdoctor itself fails or times out
#                      (default 0: log it and let the job run)
#
# Exit status: 0 the node may run the job; 1 drain it. The reason is set with
# `scontrol update ... reason=` when scontrol is on the PATH and
# SLURMD_NODENAME is set, and logged to syslog (tag p2pdoctor-prolog) and
# standard error.
set -u
bin=${P2PDOCTOR:-/usr/local/bin/p2pdoctor}
fail_on=${P2PDOCTOR_FAIL_ON:-error}
args=${P2PDOCTOR_ARGS:-}
limit=${P2PDOCTOR_TIMEOUT:-30}
strict=${P2PDOCTOR_STRICT:-0}

say() {
    echo "p2pdoctor-prolog: $*" >&2
    command -v logger >/dev/null 2>&1 && logger -t p2pdoctor-prolog -- "$*"
    return 0
}

# $args is split into words on purpose (several options).
# shellcheck disable=SC2086
summary=$(timeout "$limit" "$bin" check --summary --fail-on "$fail_on" $args 2>&1)
rc=$?
line=$(printf '%s\n' "$summary" | tail -n 1)
case $rc in
    0)
        exit 0
        ;;
    1 | 2)
        say "draining: $line"
        if [ -n "${SLURMD_NODENAME:-}" ] && command -v scontrol >/dev/null 2>&1; then
            # Slurm keeps a reason short: the verdict and its counts.
            scontrol update nodename="$SLURMD_NODENAME" state=drain reason="$(printf '%.200s' "$line")"
        fi
        exit 1
        ;;
    *)
        if [ "$rc" -eq 124 ]; then
            what="timed out after ${limit}s"
        else
            what="failed (exit $rc): $line"
        fi
        if [ "$strict" = 1 ]; then
            say "p2pdoctor check $what; draining (P2PDOCTOR_STRICT=1)"
            if [ -n "${SLURMD_NODENAME:-}" ] && command -v scontrol >/dev/null 2>&1; then
                scontrol update nodename="$SLURMD_NODENAME" state=drain reason="p2pdoctor check $what"
            fi
            exit 1
        fi
        say "p2pdoctor check $what; the node stays in service"
        exit 0
        ;;
esac
