#!/bin/sh
# Harness for deploy/ansible, run by tests/deploy.rs with:
#   P2PDOCTOR_BIN  the p2pdoctor binary under test
#   GOOD_ROOT      a tree (the norm)
#   ODD_ROOT       the same machine with one difference (an outlier)
# Runs the real playbook with ansible-playbook against three inventory
# hosts that are all this machine: localhost (connection local) and node-a,
# node-b (two more names for 127.0.0.1, connection local). Each reads its
# own root (p2pdoctor_root), so node-b is the outlier fleet must find.
set -u
deploy="$(cd "$(dirname "$0")/../.." && pwd)/deploy/ansible"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}

cat > "$work/inventory.ini" <<INV
[p2p]
localhost ansible_connection=local p2pdoctor_root=$GOOD_ROOT
node-a ansible_host=127.0.0.1 ansible_connection=local p2pdoctor_root=$GOOD_ROOT p2pdoctor_local_bin=$P2PDOCTOR_BIN p2pdoctor_bin=/nonexistent/p2pdoctor
node-b ansible_host=127.0.0.1 ansible_connection=local p2pdoctor_root=$ODD_ROOT

[p2p:vars]
# Every host is this machine: run modules with the controller's Python.
ansible_python_interpreter="{{ ansible_playbook_python }}"
p2pdoctor_bin=$P2PDOCTOR_BIN
p2pdoctor_become=false
INV

export ANSIBLE_LOCAL_TEMP="$work/tmp" ANSIBLE_REMOTE_TMP="$work/tmp" ANSIBLE_NOCOLOR=1 \
    ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOME="$work/ansible-home" P2PDOCTOR_PCI_IDS=/dev/null
play() {
    ansible-playbook -i "$work/inventory.ini" "$deploy/fleet.yml" \
        -e "p2pdoctor_fetch_dir=$work/fleet" -e "p2pdoctor_controller_bin=$P2PDOCTOR_BIN" "$@" \
        > "$work/play.log" 2>&1
}

play; rc=$?
[ "$rc" = 0 ] || { fail "ansible-playbook exit $rc"; cat "$work/play.log"; }
for h in localhost node-a node-b; do
    [ -s "$work/fleet/$h.tar.gz" ] || fail "no snapshot fetched from $h"
done
[ -s "$work/fleet/fleet.txt" ] || fail "no fleet.txt on the controller"
grep -q "p2pdoctor fleet: 3 nodes, 1 family, 1 outlier node in 1 group" "$work/play.log" \
    || fail "the report is not in the play's output"
python3 - "$work/fleet/fleet.json" <<'PY' || fail "fleet.json (above)"
import json, sys
d = json.load(open(sys.argv[1]))
errors = []
if d["nodes_total"] != 3: errors.append(f"nodes_total {d['nodes_total']}")
fam = d["families"]
if len(fam) != 1: errors.append(f"{len(fam)} families")
else:
    f = fam[0]
    if f["representative"] != "localhost" or f["majority"] != 2:
        errors.append(f"norm {f['representative']} x{f['majority']}")
    if [o["nodes"] for o in f["outliers"]] != [["node-b"]]:
        errors.append(f"outliers {[o['nodes'] for o in f['outliers']]}")
    elif not any(c["class"] == "link" for c in f["outliers"][0]["differences"]):
        errors.append(f"node-b's differences: {f['outliers'][0]['differences']}")
for e in errors: print("FAIL", e)
sys.exit(1 if errors else 0)
PY
# The temporary files on the hosts are gone.
if ls "$work"/tmp/*.p2pdoctor.tar.gz* > /dev/null 2>&1 || ls /tmp/ansible.*.p2pdoctor.tar.gz* > /dev/null 2>&1; then
    fail "temporary snapshots left on the host"
fi

# Asked to, outliers fail the play.
play -e p2pdoctor_fail_on_outliers=true; rc=$?
[ "$rc" != 0 ] || fail "p2pdoctor_fail_on_outliers=true did not fail the play"
grep -q "found outliers" "$work/play.log" || fail "no outlier message: $(tail -20 "$work/play.log")"

# Only the alike hosts: no outlier, the play passes even so.
rm -rf "$work/fleet"
play -e p2pdoctor_hosts=localhost,node-a -e p2pdoctor_fail_on_outliers=true; rc=$?
[ "$rc" = 0 ] || { fail "two alike hosts: exit $rc"; tail -30 "$work/play.log"; }

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "ansible: all cases pass"
