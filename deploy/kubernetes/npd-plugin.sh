#!/bin/sh
# node-problem-detector custom plugin (p2pdoctor-plugin.json): reads the
# textfile the p2pdoctor DaemonSet writes and reports, by the plugin
# protocol, exit 0 (OK), 1 (problem: the node condition P2PDMAProblem
# becomes True) or 2 (unknown), with one line on standard output that
# becomes the condition's message.
#
#   P2PDOCTOR_TEXTFILE  the file (default /var/lib/node-exporter/textfile/p2pdoctor.prom)
#   P2PDOCTOR_MAX_AGE   seconds after which a result is stale: unknown (default 1800)
set -u
file=${P2PDOCTOR_TEXTFILE:-/var/lib/node-exporter/textfile/p2pdoctor.prom}
max_age=${P2PDOCTOR_MAX_AGE:-1800}

if [ ! -r "$file" ]; then
    echo "no p2pdoctor result at $file: is the p2pdoctor DaemonSet running on this node?"
    exit 2
fi
ran=$(sed -n 's/^p2pdoctor_last_run_timestamp_seconds \([0-9][0-9]*\).*/\1/p' "$file")
if [ -z "$ran" ]; then
    echo "$file holds no p2pdoctor_last_run_timestamp_seconds: not a p2pdoctor result"
    exit 2
fi
age=$(( $(date +%s) - ran ))
if [ "$age" -gt "$max_age" ]; then
    echo "the p2pdoctor result is ${age}s old (more than ${max_age}s): p2pdoctor check is failing or not running"
    exit 2
fi
if grep -q '^p2pdoctor_verdict{verdict="errors"} 1$' "$file"; then
    # The rules with predicted or confirmed errors, each once: "P2P301 acs-redirect, ...".
    rules=$(sed -n 's/^p2pdoctor_rule_findings{rule="\([^"]*\)",name="\([^"]*\)",severity="error",status="\(predicted\|confirmed\)"} [1-9][0-9]*$/\1 \2/p' "$file" \
        | sort -u | paste -sd, - | sed 's/,/, /g')
    echo "p2pdoctor finds P2P errors: ${rules:-see p2pdoctor check on the node}"
    exit 1
fi
echo "p2pdoctor finds no P2P error"
exit 0
