#!/bin/sh
# Harness for deploy/kubernetes, run by tests/deploy.rs with:
#   P2PDOCTOR_BIN  the p2pdoctor binary under test
#   CLEAN_ROOT     a tree where check is all clear
#   ERROR_ROOT     a tree with errors (P2P301 acs-redirect)
#   VALIDATE       1: also validate the manifests with kubernetes-validate
#                  (offline: it bundles the Kubernetes schemas) and check
#                  them with python3 + PyYAML
#   PROMTOOL       1: also hold the textfile to `promtool check metrics`
# Runs check-loop.sh once as the DaemonSet does, then npd-plugin.sh on what
# it wrote, as node-problem-detector does.
set -u
dir="$(cd "$(dirname "$0")/../.." && pwd)/deploy/kubernetes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "FAIL $*"
    failures=$((failures + 1))
}

# --- the DaemonSet's loop, once, into a textfile directory
mkdir "$work/textfile"
run_loop() {
    env P2PDOCTOR_BIN="$P2PDOCTOR_BIN" P2PDOCTOR_TEXTFILE_DIR="$work/textfile" P2PDOCTOR_ONCE=1 \
        P2PDOCTOR_ROOT="$1" sh "$dir/check-loop.sh" 2> "$work/loop.err"
}
run_loop "$ERROR_ROOT" || fail "check-loop.sh exited $? on a node with errors: $(cat "$work/loop.err")"
prom="$work/textfile/p2pdoctor.prom"
grep -q '^p2pdoctor_verdict{verdict="errors"} 1$' "$prom" || fail "no errors verdict in $prom"
[ "$(ls -A "$work/textfile")" = "p2pdoctor.prom" ] || fail "more than the .prom file left: $(ls -A "$work/textfile")"
if [ "${PROMTOOL:-0}" = 1 ]; then
    promtool check metrics < "$prom" || fail "promtool rejects the textfile"
fi

# --- node-problem-detector's plugin on it
plugin() {
    env P2PDOCTOR_TEXTFILE="$prom" "$@" sh "$dir/npd-plugin.sh" > "$work/plugin.out"
}
plugin; rc=$?
[ "$rc" = 1 ] || fail "plugin exit $rc on errors, expected 1 (problem)"
grep -qx "p2pdoctor finds P2P errors: P2P301 acs-redirect" "$work/plugin.out" \
    || fail "plugin message: $(cat "$work/plugin.out")"

run_loop "$CLEAN_ROOT" || fail "check-loop.sh exited $? on a clean node"
plugin; rc=$?
[ "$rc" = 0 ] || fail "plugin exit $rc on a clean node, expected 0"
grep -qx "p2pdoctor finds no P2P error" "$work/plugin.out" || fail "plugin message: $(cat "$work/plugin.out")"

# A failing check keeps the previous result and says so; exit 3 once.
cp "$prom" "$work/before.prom"
run_loop "$work/no-such-root"; rc=$?
[ "$rc" = 3 ] || fail "check-loop.sh exit $rc when p2pdoctor fails, expected 3"
cmp -s "$prom" "$work/before.prom" || fail "the previous result was not kept"
grep -q "keeps the previous result" "$work/loop.err" || fail "the failure is not logged: $(cat "$work/loop.err")"

# A stale result (the loop stopped) is unknown, not OK.
sed 's/^p2pdoctor_last_run_timestamp_seconds .*/p2pdoctor_last_run_timestamp_seconds 1000.5/' "$work/before.prom" > "$prom"
plugin; rc=$?
[ "$rc" = 2 ] || fail "plugin exit $rc on a stale result, expected 2 (unknown)"
grep -q "s old" "$work/plugin.out" || fail "stale message: $(cat "$work/plugin.out")"
rm "$prom"
plugin; rc=$?
[ "$rc" = 2 ] || fail "plugin exit $rc without a result, expected 2 (unknown)"
echo "not metrics" > "$prom"
plugin; rc=$?
[ "$rc" = 2 ] || fail "plugin exit $rc on a foreign file, expected 2 (unknown)"

# --- the manifests
if [ "${VALIDATE:-0}" = 1 ]; then
    resources=$(sed -n 's/^  - \([a-z-]*\.yaml\)$/\1/p' "$dir/kustomization.yaml")
    [ -n "$resources" ] || fail "no resources in kustomization.yaml"
    for f in $resources check-loop.sh npd-plugin.sh p2pdoctor-plugin.json; do
        [ -f "$dir/$f" ] || fail "kustomization.yaml names $f, which is missing"
    done
    (cd "$dir" && kubernetes-validate --strict --quiet $resources) || fail "kubernetes-validate rejects the manifests"
    # The validator is live: a misspelt field must be refused.
    sed 's/readOnly: true/readOnyl: true/' "$dir/daemonset.yaml" > "$work/broken.yaml"
    if kubernetes-validate --strict --quiet "$work/broken.yaml" > /dev/null 2>&1; then
        fail "kubernetes-validate accepted a misspelt field: it is not checking"
    fi
    python3 - "$dir" <<'PY' || fail "manifest checks (above)"
import json, sys, yaml
d = sys.argv[1]
errors = []
docs = {}
for f in ["daemonset.yaml", "node-problem-detector.yaml"]:
    for doc in yaml.safe_load_all(open(f"{d}/{f}")):
        docs[(doc["kind"], doc["metadata"]["name"])] = doc
def pod(name):
    return docs[("DaemonSet", name)]["spec"]["template"]["spec"]
p = pod("p2pdoctor")
c = p["containers"][0]
sc = c["securityContext"]
if sc.get("privileged") is not False: errors.append("p2pdoctor: not explicitly unprivileged")
if sc.get("allowPrivilegeEscalation") is not False: errors.append("p2pdoctor: privilege escalation allowed")
if sc["capabilities"]["drop"] != ["ALL"]: errors.append("p2pdoctor: capabilities not dropped")
if sorted(sc["capabilities"]["add"]) != ["SYSLOG", "SYS_ADMIN"]: errors.append(f"p2pdoctor: capabilities {sc['capabilities']['add']}")
if not sc.get("readOnlyRootFilesystem"): errors.append("p2pdoctor: writable root file system")
host = {v["name"]: v["hostPath"]["path"] for v in p["volumes"] if "hostPath" in v}
mounts = {m["name"]: m for m in c["volumeMounts"]}
for name, path in host.items():
    ro = mounts[name].get("readOnly", False)
    if path in ("/sys", "/boot", "/dev/kmsg") and not ro:
        errors.append(f"p2pdoctor: host {path} is writable")
    if not ro and path != "/var/lib/node-exporter/textfile":
        errors.append(f"p2pdoctor: writable host path {path}")
    if path.startswith("/dev") and path != "/dev/kmsg":
        errors.append(f"p2pdoctor: device {path} mounted")
if sorted(host.values()) != ["/boot", "/dev/kmsg", "/sys", "/var/lib/node-exporter/textfile"]:
    errors.append(f"p2pdoctor: host paths {sorted(host.values())}")
if c["command"][-1] != "/scripts/check-loop.sh" or mounts["scripts"]["mountPath"] != "/scripts":
    errors.append("p2pdoctor: the loop script is not where the command runs it")
env = {e["name"]: e.get("value") for e in c["env"]}
if env["P2PDOCTOR_TEXTFILE_DIR"] != mounts["textfile"]["mountPath"]:
    errors.append("p2pdoctor: P2PDOCTOR_TEXTFILE_DIR is not the textfile mount")
# node-problem-detector: the plugin config and script where the flag and the config say.
n = pod("node-problem-detector")
nc = n["containers"][0]
nm = {m["name"]: m for m in nc["volumeMounts"]}
flag = [a for a in nc["command"] if a.startswith("--config.custom-plugin-monitor=")]
cfg_dir = nm["config"]["mountPath"]
if flag != [f"--config.custom-plugin-monitor={cfg_dir}/p2pdoctor-plugin.json"]:
    errors.append(f"npd: plugin flag {flag}")
plugin = json.load(open(f"{d}/p2pdoctor-plugin.json"))
if plugin["plugin"] != "custom": errors.append("npd: not a custom plugin")
conds = [x["type"] for x in plugin["conditions"]]
for r in plugin["rules"]:
    if r["path"] != f"{cfg_dir}/npd-plugin.sh": errors.append(f"npd: rule path {r['path']}")
    if r["type"] == "permanent" and r["condition"] not in conds: errors.append(f"npd: condition {r['condition']} undeclared")
nenv = {e["name"]: e.get("value") for e in nc["env"]}
tf = nm["textfile"]
if not tf.get("readOnly"): errors.append("npd: textfile directory writable")
if nenv["P2PDOCTOR_TEXTFILE"] != tf["mountPath"] + "/p2pdoctor.prom": errors.append("npd: P2PDOCTOR_TEXTFILE is not in the textfile mount")
nhost = {v["name"]: v["hostPath"]["path"] for v in n["volumes"] if "hostPath" in v}
if nhost["textfile"] != host["textfile"]: errors.append("npd reads another textfile directory than p2pdoctor writes")
for e in errors: print("FAIL", e)
sys.exit(1 if errors else 0)
PY
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "kubernetes: all cases pass"
