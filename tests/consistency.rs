//! A diagnosis never contradicts itself: on every fixture and every lab
//! snapshot, with every endpoint as a provider, what the findings say of a
//! pair agrees with the pair's own verdict, and the counts agree with the
//! pairs.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Every `A → B` (two PCI addresses around an arrow) in a text.
fn cited_pairs(text: &str) -> Vec<(String, String)> {
    let is_bdf = |s: &str| s.parse::<p2pdoctor::pci::Bdf>().is_ok() && s.contains(':');
    let sep = |c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';');
    let parts: Vec<&str> = text.split(" → ").collect();
    let mut out = Vec::new();
    for w in parts.windows(2) {
        let left = w[0].rsplit(sep).next().unwrap_or("");
        let right = w[1].split(sep).next().unwrap_or("");
        if is_bdf(left) && is_bdf(right) {
            out.push((left.to_string(), right.to_string()));
        }
    }
    out
}

fn inputs() -> Vec<(String, PathBuf, Option<Built>)> {
    let mut v: Vec<(String, PathBuf, Option<Built>)> = spec_names()
        .into_iter()
        .map(|s| {
            let b = build(&s);
            (s, b.root(), Some(b))
        })
        .collect();
    let lab = fixtures_dir().join("lab");
    let mut snaps: Vec<PathBuf> = std::fs::read_dir(&lab)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    snaps.sort();
    for p in snaps {
        v.push((
            p.file_name().unwrap().to_string_lossy().into_owned(),
            p,
            None,
        ));
    }
    v
}

fn check(root: &Path) -> Value {
    let out = run(root, &["check", "--all-pairs", "--format", "json"]);
    let compact: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    // The rows and the shared paths say what --expand-pairs says of each
    // pair: nothing is lost by sharing a path.
    let out = run(
        root,
        &["check", "--all-pairs", "--expand-pairs", "--format", "json"],
    );
    let expanded: Value = serde_json::from_slice(&out.stdout).unwrap();
    let joined = expand_pairs(&compact);
    assert_eq!(
        joined["pairs"],
        expanded["pairs"],
        "{}: --expand-pairs differs from pairs joined to their paths",
        root.display()
    );
    joined
}

#[test]
fn findings_and_pairs_never_contradict_each_other() {
    let mut failures = Vec::new();
    // The catalog's severity is the most a rule's findings may take.
    let rules: Value = serde_json::from_slice(
        &p2pdoctor()
            .args(["rules", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let rank = |s: &str| ["info", "warning", "error"].iter().position(|x| *x == s);
    let most: HashMap<String, usize> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                rank(r["severity"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    for (name, root, _keep) in inputs() {
        let doc = check(&root);
        for f in doc["findings"].as_array().unwrap() {
            let rule = f["rule"].as_str().unwrap();
            match (most.get(rule), rank(f["severity"].as_str().unwrap())) {
                (Some(&m), Some(s)) if s <= m => {}
                (m, s) => failures.push(format!(
                    "{name}: {rule} found at {s:?}, above its catalog severity {m:?} (or not in the catalog)"
                )),
            }
        }
        let topo = run(&root, &["topo", "--format", "json"]);
        let topo: Value = serde_json::from_slice(&topo.stdout).unwrap();
        let in_tree: std::collections::HashSet<&str> = topo["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["bdf"].as_str().unwrap())
            .collect();
        let pairs: HashMap<(String, String), &Value> = doc["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (
                        p["provider"].as_str().unwrap().to_string(),
                        p["client"].as_str().unwrap().to_string(),
                    ),
                    p,
                )
            })
            .collect();
        let map_type = |a: &str, b: &str| -> Option<String> {
            pairs
                .get(&(a.to_string(), b.to_string()))
                .map(|p| p["map_type"].as_str().unwrap().to_string())
        };
        // The counts are the pairs'.
        let s = &doc["summary"];
        for (key, mt) in [
            ("bus_addr", "bus_addr"),
            ("thru_host_bridge", "thru_host_bridge"),
            ("not_supported", "not_supported"),
        ] {
            let n = pairs.values().filter(|p| p["map_type"] == mt).count();
            if s[key].as_u64() != Some(n as u64) {
                failures.push(format!("{name}: summary {key} {} but {n} pairs", s[key]));
            }
        }
        for f in doc["findings"].as_array().unwrap() {
            let rule = f["rule"].as_str().unwrap();
            let status = f["status"].as_str().unwrap();
            let msg = f["message"].as_str().unwrap();
            let subjects: Vec<&str> = f["subjects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            match rule {
                // No P2PDMA in the kernel: no pair is anything but refused.
                "P2P101" if status == "predicted" => {
                    for ((a, b), p) in &pairs {
                        if p["map_type"] != "not_supported" || p["blocked_by"].is_null() {
                            failures.push(format!(
                                "{name}: P2P101 says no P2PDMA, but {a} → {b} is {}",
                                p["map_type"]
                            ));
                        }
                    }
                }
                // "lets them do P2P directly": every pair between them
                // turns around below a common bridge.
                "P2P502" if msg.contains("do P2P directly") => {
                    for a in &subjects {
                        for b in &subjects {
                            if let Some(mt) = map_type(a, b)
                                && a != b
                                && mt != "bus_addr"
                            {
                                failures.push(format!(
                                    "{name}: P2P502 says {a} and {b} do P2P directly, but the pair is {mt}"
                                ));
                            }
                        }
                    }
                }
                // Admitted through the root complex.
                "P2P402" => {
                    for (a, b) in cited_pairs(msg) {
                        if map_type(&a, &b).as_deref() != Some("thru_host_bridge") {
                            failures.push(format!(
                                "{name}: P2P402 cites {a} → {b} as admitted through the root complex, but it is {:?}",
                                map_type(&a, &b)
                            ));
                        }
                    }
                }
                // Refused for the host bridge.
                "P2P401" if status != "refuted" => {
                    for (a, b) in cited_pairs(msg) {
                        if map_type(&a, &b).as_deref() != Some("not_supported") {
                            failures.push(format!(
                                "{name}: P2P401 cites {a} → {b} as refused, but it is {:?}",
                                map_type(&a, &b)
                            ));
                        }
                    }
                }
                // ACS redirect on the path: the pair lists the bridges.
                "P2P301" if status != "inconclusive" => {
                    for (a, b) in cited_pairs(msg) {
                        let listed = pairs
                            .get(&(a.clone(), b.clone()))
                            .and_then(|p| p["acs_redirect"].as_array())
                            .is_some_and(|l| !l.is_empty());
                        if !listed {
                            failures.push(format!(
                                "{name}: P2P301 cites {a} → {b}, which has no ACS-redirect bridge"
                            ));
                        }
                    }
                }
                _ => {}
            }
            // A finding's subjects are devices of this machine.
            for s in &subjects {
                if !in_tree.contains(s) {
                    failures.push(format!(
                        "{name}: {rule} names {s}, which is not in the tree"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn cited_pairs_are_read_from_messages() {
    assert_eq!(
        cited_pairs(
            "sends 3 pairs (0000:07:00.0 → 0000:08:00.0, 0000:07:00.0 → 0000:09:00.0, and 1 more)"
        ),
        [
            ("0000:07:00.0".to_string(), "0000:08:00.0".to_string()),
            ("0000:07:00.0".to_string(), "0000:09:00.0".to_string())
        ]
    );
}
