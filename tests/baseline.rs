//! `p2pdoctor baseline` and `check --baseline` / `check --policy` through
//! the binary: the record names no host, deviations of generated variants
//! of one machine (a flipped ACS bit, a narrower link, a missing device,
//! renumbered buses, another host name and serials) are exactly the
//! findings expected, and the exit status follows them.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Records the baseline of `root` into `dir/good.json`.
fn record(root: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("good.json");
    let out = run(root, &["baseline", "-o", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// `check --format json` with extra arguments: (exit status, document).
fn check(root: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["check", "--format", "json"];
    args.extend_from_slice(extra);
    let out = run(root, &args);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    schema::assert_valid("check", &doc);
    (out.status.code(), doc)
}

/// (rule, severity, subjects, message) of the findings whose rule starts with `prefix`.
fn stage(doc: &Value, prefix: &str) -> Vec<(String, String, Vec<String>, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with(prefix))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["subjects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_record_follows_its_schema_and_names_no_host() {
    let built = build("acs_switch");
    let path = record(&built.root(), built.dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    schema::assert_valid("baseline", &doc);
    // No host name, serial number or bus address anywhere.
    for host_specific in [
        "acs-switch-box",
        "S4YNNE0N100001",
        "CVFT5123000B800CGN",
        "0000:07:00.0",
    ] {
        assert!(!text.contains(host_specific), "{host_specific} in {text}");
    }
    let node = &doc["node"];
    assert_eq!(node["host"]["kernel_release"], "7.2.0-1-amd64");
    // Kernel parameters that do not change P2P (root=) are left out.
    assert_eq!(node["host"]["cmdline"], serde_json::json!([]));
    let provider = node["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["place"] == "hb0/03.0/00.0/08.0/00.0")
        .unwrap();
    assert_eq!(provider["ids"], "144d:a824");
    assert_eq!(provider["p2pmem"]["size"], 16 << 20);
    let port = node["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["place"] == "hb0/03.0/00.0/08.0")
        .unwrap();
    assert_eq!(port["acs_ctrl"], 0x0c);
    assert!(
        node["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["provider"] == "hb0/03.0/00.0/08.0/00.0"
                && p["client"] == "hb0/03.0/00.0/09.0/00.0"
                && p["acs_redirect"]
                    == serde_json::json!(["hb0/03.0/00.0/08.0", "hb0/03.0/00.0/09.0"]))
    );
    // An existing file is kept unless --force.
    let out = run(&built.root(), &["baseline", "-o", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = run(
        &built.root(),
        &["baseline", "-o", path.to_str().unwrap(), "--force"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "deterministic"
    );
}

#[test]
fn the_good_node_and_its_twins_deviate_in_nothing() {
    let built = build("acs_switch");
    let good = record(&built.root(), built.dir.path());
    let g = good.to_str().unwrap();
    let (plain_code, plain) = check(&built.root(), &[]);
    let (code, doc) = check(&built.root(), &["--baseline", g]);
    assert!(
        stage(&doc, "P2P10").is_empty(),
        "{:#?}",
        stage(&doc, "P2P10")
    );
    assert_eq!(code, plain_code);
    assert_eq!(doc["summary"], plain["summary"]);
    // Another host name, other serial numbers, another root= and buses
    // renumbered (root port 00:02.0 keeps 5 buses instead of 3): the same
    // node for P2P.
    let (_d, twin) = variant(|v| {
        v["host"]["hostname"] = "node-017".into();
        v["host"]["cmdline"] =
            "BOOT_IMAGE=/boot/vmlinuz-7.2.0-1-amd64 root=UUID=1234 ro quiet".into();
        root_device(v, 1)["reserve_buses"] = toml::Value::Integer(5);
        for k in 0..3 {
            downstream(v, k)["children"][0]["nvme"]["serial"] = format!("OTHER{k}").into();
        }
    });
    let (code, doc) = check(&twin, &["--baseline", g]);
    assert!(
        stage(&doc, "P2P10").is_empty(),
        "{:#?}",
        stage(&doc, "P2P10")
    );
    assert_eq!(code, plain_code);
    // The twin's addresses did move: the check names its own.
    assert!(
        doc["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["provider"] == "0000:09:00.0")
    );
}

#[test]
fn a_flipped_acs_bit_is_an_acs_and_a_pair_deviation() {
    let built = build("acs_switch");
    let good = record(&built.root(), built.dir.path());
    // 06:08.0 above the provider: RR CR cleared.
    let (_d, b) = variant(|v| downstream(v, 0)["acs"]["ctrl"] = toml::Value::Integer(0));
    let (_, doc) = check(&b, &["--baseline", good.to_str().unwrap()]);
    let got = stage(&doc, "P2P10");
    assert!(
        got.contains(&(
            "P2P1004".into(),
            "warning".into(),
            vec!["0000:06:08.0".into()],
            "hb0/03.0/00.0/08.0: ACS Control 0x0000 (off) where the baseline has 0x000c (RR CR)."
                .into()
        )),
        "{got:#?}"
    );
    // The pairs from the provider keep only 06:09.0 (or nothing) on their
    // way: another ACS-redirect list, the same map type.
    let pairs: Vec<_> = got.iter().filter(|f| f.0 == "P2P1001").collect();
    assert!(!pairs.is_empty(), "{got:#?}");
    assert!(
        pairs
            .iter()
            .any(|f| f.3.contains("0000:07:00.0 → 0000:08:00.0")
                && f.3.contains("ACS-redirect bridges [hb0/03.0/00.0/09.0] where the baseline has [hb0/03.0/00.0/08.0, hb0/03.0/00.0/09.0]")),
        "{pairs:#?}"
    );
    // Nothing else deviates.
    assert!(
        got.iter().all(|f| f.0 == "P2P1004" || f.0 == "P2P1001"),
        "{got:#?}"
    );
}

#[test]
fn a_narrower_link_is_a_link_warning_and_a_missing_device_an_error() {
    let built = build("acs_switch");
    let good = record(&built.root(), built.dir.path());
    let g = good.to_str().unwrap();
    let (_d, narrow) = variant(|v| {
        let link = downstream(v, 3)["children"][0]["link"]
            .as_table_mut()
            .unwrap();
        link.insert("width".into(), toml::Value::Integer(8));
    });
    let (_, doc) = check(&narrow, &["--baseline", g]);
    let got = stage(&doc, "P2P10");
    assert_eq!(
        got,
        vec![(
            "P2P1003".to_string(),
            "warning".to_string(),
            vec!["0000:0a:00.0".to_string()],
            "hb0/03.0/00.0/10.0/00.0: link Gen3 x8 where the baseline has Gen3 x16.".to_string()
        )]
    );

    // The client NVMe below 06:09.0 is gone.
    let (_d2, missing) = variant(|v| {
        downstream(v, 1).as_table_mut().unwrap().remove("children");
    });
    let (code, doc) = check(&missing, &["--baseline", g]);
    assert_eq!(code, Some(2), "a missing device is an error");
    let got = stage(&doc, "P2P10");
    assert!(
        got.iter().any(|f| f.0 == "P2P1002"
            && f.1 == "error"
            && f.3
                == "hb0/03.0/00.0/09.0/00.0: missing: the baseline has endpoint 144d:a824 (driver nvme) here."),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|f| f.0 == "P2P1001" && f.3.contains("no such pair here")),
        "{got:#?}"
    );
}

#[test]
fn a_baseline_that_cannot_be_used_is_a_failure_that_says_what_to_do() {
    let built = build("rule_clean");
    let dir = built.dir.path();
    let missing = dir.join("nope.json");
    let out = run(
        &built.root(),
        &["check", "--baseline", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope.json") && err.contains("p2pdoctor baseline -o"),
        "{err}"
    );

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"schema_version\": 1, \"tool\": {}}").unwrap();
    let out = run(
        &built.root(),
        &["check", "--baseline", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a p2pdoctor baseline"));

    let newer = dir.join("newer.json");
    std::fs::write(&newer, "{\"schema_version\": 9}").unwrap();
    let out = run(
        &built.root(),
        &["check", "--baseline", newer.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("schema version 9"));

    // Recorded with --all-pairs, checked without.
    let all = dir.join("all.json");
    let out = run(
        &built.root(),
        &["baseline", "--all-pairs", "-o", all.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    let out = run(
        &built.root(),
        &["check", "--baseline", all.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all-pairs"));
    let out = run(
        &built.root(),
        &["check", "--all-pairs", "--baseline", all.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_policy_feeds_the_exit_status_at_its_severity() {
    let built = build("acs_switch");
    let site = fixtures_dir().join("policies/site.toml");
    let (code, doc) = check(&built.root(), &["--policy", site.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    let got = stage(&doc, "P2P11");
    // Four switch ports with redirect bits on; the provider's pairs to the
    // NVMe drives go through the host bridge.
    assert_eq!(
        got.iter().filter(|f| f.0 == "P2P1103").count(),
        4,
        "{got:#?}"
    );
    assert!(got.iter().any(|f| f.0 == "P2P1101"
        && f.3.starts_with("0000:07:00.0 → 0000:01:00.0, 0000:07:00.0 → 0000:08:00.0, 0000:07:00.0 → 0000:09:00.0: thru_host_bridge")));
    assert!(got.iter().all(|f| f.1 == "error"));

    // The same rules as warnings: exit 1, and 0 with --fail-on error.
    let dir = tempfile::tempdir().unwrap();
    let soft = dir.path().join("soft.toml");
    std::fs::write(
        &soft,
        "[acs]\nno_redirect_on = [\"switch_downstream\"]\nseverity = \"warning\"\n",
    )
    .unwrap();
    let s = soft.to_str().unwrap();
    let (_, doc) = check(&built.root(), &["--policy", s]);
    let got = stage(&doc, "P2P11");
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|f| f.1 == "warning"));
    // On the clean machine (exit 0 alone) a policy finding decides the
    // exit status: 1 as a warning (0 with --fail-on error), 2 as an error.
    let rule_clean = build("rule_clean");
    let clean = rule_clean.root();
    assert_eq!(check(&clean, &["--policy", s]).0, Some(0));
    let newer = dir.path().join("newer.toml");
    std::fs::write(
        &newer,
        "[kernel]\nmin_release = \"7.3\"\nseverity = \"warning\"\n",
    )
    .unwrap();
    let n = newer.to_str().unwrap();
    assert_eq!(check(&clean, &["--policy", n]).0, Some(1));
    assert_eq!(
        check(&clean, &["--policy", n, "--fail-on", "error"]).0,
        Some(0)
    );
    std::fs::write(&newer, "[kernel]\nmin_release = \"7.3\"\n").unwrap();
    let (code, doc) = check(&clean, &["--policy", n]);
    assert_eq!(code, Some(2));
    assert_eq!(doc["summary"]["verdict"]["predicted"], "errors");
    assert_eq!(
        stage(&doc, "P2P11")[0].3,
        "kernel 7.2.0-1-amd64 is older than the policy's minimum 7.3."
    );
    // --summary and the other formats carry it too.
    let out = run(&clean, &["check", "--policy", n, "--summary"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 error"));
    let out = run(&clean, &["check", "--policy", n, "--format", "prometheus"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("P2P1105"));
    let gpu = dir.path().join("gpu.toml");
    std::fs::write(
        &gpu,
        "[[link]]\ndevices = \"10de:*\"\nmin_gen = 5\nmin_width = 16\nseverity = \"warning\"\n",
    )
    .unwrap();
    let (_, doc) = check(&built.root(), &["--policy", gpu.to_str().unwrap()]);
    assert_eq!(
        stage(&doc, "P2P11"),
        vec![(
            "P2P1102".to_string(),
            "warning".to_string(),
            vec!["0000:0a:00.0".to_string()],
            "10de:* 0000:0a:00.0 runs at Gen3 x16; the policy wants 10de:* links at Gen5 x16 at least.".to_string()
        )]
    );
}

#[test]
fn a_policy_with_a_mistake_is_refused_with_the_file_and_the_mistake() {
    let built = build("rule_clean");
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("[kernel]\nmin_relase = \"6.2\"\n", "min_relase"),
        ("[kernel]\nmin_release = \"six\"\n", "not a kernel version"),
        (
            "[[link]]\ndevices = \"gpus\"\nmin_gen = 5\n",
            "names no devices",
        ),
        (
            "[[link]]\ndevices = \"gpu\"\n",
            "neither min_gen nor min_width",
        ),
        ("[iommu]\nmodes = [\"strict\"]\n", "strict"),
        (
            "[[pair]]\nprovider = \"nvme\"\nclient = \"gpu\"\nmap_type = \"fast\"\n",
            "map_type",
        ),
    ] {
        let p = dir.path().join("p2p.toml");
        std::fs::write(&p, text).unwrap();
        let out = run(&built.root(), &["check", "--policy", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("p2p.toml") && err.contains(says),
            "{text}: {err}"
        );
    }
}

#[test]
fn the_new_rules_are_explained() {
    for id in ["P2P1001", "P2P1005", "P2P1101", "P2P1105"] {
        let out = p2pdoctor().args(["explain", id]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{id}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(id));
    }
    let out = p2pdoctor()
        .args(["explain", "baseline-link"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("P2P1003"));
    // `rules` lists them after P2P903, in numeric order.
    let out = p2pdoctor().args(["rules"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let at = |id: &str| text.find(id).unwrap_or_else(|| panic!("{id}"));
    assert!(at("P2P903") < at("P2P1001") && at("P2P1005") < at("P2P1101"));
}
