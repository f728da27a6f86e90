#!/bin/sh
# Harness for deploy/slurm/p2pdoctor-prolog.sh, run by tests/deploy.rs with:
#   P2PDOCTOR_BIN  the p2pdoctor binary under test
#   CLEAN_ROOT     a tree where check is all clear (exit 0)
#   WARN_ROOT      a tree with warnings only (exit 1)
#   ERROR_ROOT     a tree with errors (exit 2)
# scontrol and logger are replaced by stubs that record their arguments.
set -u
prolog="$(cd "$(dirname "$0")/../.." && pwd)/deploy/slurm/p2pdoctor-prolog.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
for stub in scontrol logger; do
    printf '#!/bin/sh\necho "$*" >> "%s/%s.calls"\n' "$work" "$stub" > "$work/bin/$stub"
    chmod +x "$work/bin/$stub"
done
printf '#!/bin/sh\nsleep 5\n' > "$work/bin/slow-p2pdoctor"
chmod +x "$work/bin/slow-p2pdoctor"
failures=0

# expect NAME STATUS [VAR=VALUE...]: runs the prolog with the variables set.
expect() {
    name=$1 want=$2
    shift 2
    rm -f "$work"/*.calls
    env PATH="$work/bin:$PATH" SLURMD_NODENAME=node17 P2PDOCTOR="$P2PDOCTOR_BIN" \
        P2PDOCTOR_PCI_IDS=/dev/null "$@" sh "$prolog" 2> "$work/stderr"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL $name: exit $got, expected $want; stderr: $(cat "$work/stderr")"
        failures=$((failures + 1))
    else
        echo "ok   $name (exit $got)"
    fi
}

# called STUB PATTERN / not_called STUB
called() {
    if ! grep -q -- "$2" "$work/$1.calls" 2>/dev/null; then
        echo "FAIL $1 was not called with '$2'; calls: $(cat "$work/$1.calls" 2>/dev/null)"
        failures=$((failures + 1))
    fi
}
not_called() {
    if [ -e "$work/$1.calls" ]; then
        echo "FAIL $1 was called: $(cat "$work/$1.calls")"
        failures=$((failures + 1))
    fi
}

expect "clean node runs the job" 0 P2PDOCTOR_ROOT="$CLEAN_ROOT"
not_called scontrol

expect "errors drain" 1 P2PDOCTOR_ROOT="$ERROR_ROOT"
called scontrol "nodename=node17 state=drain reason=p2pdoctor: errors: 1 error"
called logger "draining: p2pdoctor: errors"

expect "warnings pass by default (fail on error)" 0 P2PDOCTOR_ROOT="$WARN_ROOT"
not_called scontrol
expect "warnings drain with P2PDOCTOR_FAIL_ON=warning" 1 P2PDOCTOR_ROOT="$WARN_ROOT" P2PDOCTOR_FAIL_ON=warning
called scontrol "reason=p2pdoctor: warnings"

# A site policy through P2PDOCTOR_ARGS turns the clean node's kernel into an error.
printf '[kernel]\nmin_release = "99.0"\n' > "$work/p2p.toml"
expect "a policy error drains" 1 P2PDOCTOR_ROOT="$CLEAN_ROOT" P2PDOCTOR_ARGS="--policy $work/p2p.toml"
called scontrol "reason=p2pdoctor: errors"

expect "a failing p2pdoctor leaves the node in service" 0 P2PDOCTOR_ROOT="$work/no-such-root"
not_called scontrol
if ! grep -q "failed (exit 3)" "$work/stderr"; then
    echo "FAIL the failure is not logged: $(cat "$work/stderr")"
    failures=$((failures + 1))
fi
expect "a failing p2pdoctor drains with P2PDOCTOR_STRICT=1" 1 P2PDOCTOR_ROOT="$work/no-such-root" P2PDOCTOR_STRICT=1
called scontrol "reason=p2pdoctor check failed (exit 3)"

expect "a hung p2pdoctor is given up" 0 P2PDOCTOR="$work/bin/slow-p2pdoctor" P2PDOCTOR_TIMEOUT=1
if ! grep -q "timed out after 1s" "$work/stderr"; then
    echo "FAIL the timeout is not logged: $(cat "$work/stderr")"
    failures=$((failures + 1))
fi
expect "a hung p2pdoctor drains with P2PDOCTOR_STRICT=1" 1 P2PDOCTOR="$work/bin/slow-p2pdoctor" P2PDOCTOR_TIMEOUT=1 P2PDOCTOR_STRICT=1

# Without scontrol (or outside slurmd) the exit status alone drains.
rm "$work/bin/scontrol"
expect "errors drain without scontrol too" 1 P2PDOCTOR_ROOT="$ERROR_ROOT"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "slurm prolog: all cases pass"
