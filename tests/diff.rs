//! `p2pdoctor diff A B` on generated variants of one machine (a flipped
//! ACS bit, a degraded link, renumbered buses, a missing device) and on
//! lab snapshots, with the exact differences expected.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn diff(a: &Path, b: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let out = p2pdoctor()
        .arg("diff")
        .arg(a)
        .arg(b)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    common::schema::assert_valid("diff", &doc);
    (out.status.code(), doc)
}

/// (class, subject, what, before, after) of every change.
fn changes(doc: &Value) -> Vec<(String, String, String, Value, Value)> {
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["class"].as_str().unwrap().to_string(),
                c["subject"].as_str().unwrap().to_string(),
                c["what"].as_str().unwrap().to_string(),
                c["before"].clone(),
                c["after"].clone(),
            )
        })
        .collect()
}

fn change(
    class: &str,
    subject: &str,
    what: &str,
    before: Value,
    after: Value,
) -> (String, String, String, Value, Value) {
    (class.into(), subject.into(), what.into(), before, after)
}

#[test]
fn the_same_machine_is_the_same() {
    let built = build("acs_switch");
    let (code, doc) = diff(&built.root(), &built.root(), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["same"], true);
    assert!(doc["changes"].as_array().unwrap().is_empty());
    let lab = fixtures_dir().join("lab/01-switch.tar.gz");
    assert_eq!(diff(&lab, &lab, &[]).0, Some(0));
}

#[test]
fn a_flipped_acs_bit_is_named_with_the_pairs_it_changes() {
    let built = build("acs_switch");
    // 06:08.0, above the provider 07:00.0: RR CR cleared.
    let (_d, b) = variant(|v| downstream(v, 0)["acs"]["ctrl"] = toml::Value::Integer(0));
    let (code, doc) = diff(&built.root(), &b, &[]);
    assert_eq!(code, Some(1));
    let got = changes(&doc);
    assert!(
        got.contains(&change(
            "acs",
            "0000:06:08.0",
            "ACS Control",
            "0x000c (RR CR)".into(),
            "0x0000 (off)".into()
        )),
        "{got:#?}"
    );
    // The provider's pair to 08:00.0 keeps 06:09.0 in its list only.
    assert!(
        got.contains(&change(
            "pair",
            "0000:07:00.0 → 0000:08:00.0",
            "ACS-redirect bridges",
            "0000:06:08.0;0000:06:09.0".into(),
            "0000:06:09.0".into()
        )),
        "{got:#?}"
    );
    // Only ACS, pairs and findings changed; ranked pairs first.
    let classes: Vec<&str> = got.iter().map(|c| c.0.as_str()).collect();
    assert!(
        classes
            .iter()
            .all(|c| ["pair", "finding", "acs"].contains(c)),
        "{classes:?}"
    );
    assert_eq!(classes.first(), Some(&"pair"));
    // --ignore drops whole classes; with all three gone it is the same.
    let (code, doc) = diff(&built.root(), &b, &["--ignore", "pair,finding,acs"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        doc["ignored"],
        serde_json::json!(["pair", "finding", "acs"])
    );
}

#[test]
fn a_degraded_link_is_a_link_change() {
    let built = build("acs_switch");
    let (_d, b) = variant(|v| {
        let link = downstream(v, 3)["children"][0]["link"]
            .as_table_mut()
            .unwrap();
        link.insert("width".into(), toml::Value::Integer(8));
        link.insert("max_width".into(), toml::Value::Integer(16));
    });
    let (code, doc) = diff(&built.root(), &b, &[]);
    assert_eq!(code, Some(1));
    let got = changes(&doc);
    assert!(
        got.contains(&change(
            "link",
            "0000:0a:00.0",
            "link",
            "Gen3 x16".into(),
            "Gen3 x8 (degraded; capable of Gen4 x16)".into()
        )),
        "{got:#?}"
    );
}

#[test]
fn renumbered_buses_match_devices_by_position_not_address() {
    let built = build("acs_switch");
    // Root port 00:02.0 keeps two more buses: everything below 00:03.0 moves
    // up by two (05 → 07, 06 → 08, ...).
    let (_d, b) = variant(|v| root_device(v, 1)["reserve_buses"] = toml::Value::Integer(5));
    let (code, doc) = diff(&built.root(), &b, &[]);
    assert_eq!(code, Some(1));
    let got = changes(&doc);
    // Every difference is an address: no device added or removed, no pair
    // or finding changed once devices are matched.
    assert!(
        got.iter().all(|c| c.0 == "device" && c.2 == "address"),
        "{got:#?}"
    );
    assert!(
        got.contains(&change(
            "device",
            "0000:07:00.0 (now 0000:09:00.0)",
            "address",
            "0000:07:00.0".into(),
            "0000:09:00.0".into()
        )),
        "{got:#?}"
    );
    let by: Vec<&str> = doc["matched"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["a"] != m["b"])
        .map(|m| m["by"].as_str().unwrap())
        .collect();
    assert!(!by.is_empty() && by.iter().all(|b| *b == "path"), "{by:?}");
}

#[test]
fn a_missing_device_takes_its_pairs_and_findings_along() {
    let built = build("acs_switch");
    // The NVMe below 06:09.0 is gone.
    let (_d, b) = variant(|v| {
        downstream(v, 1).as_table_mut().unwrap().remove("children");
    });
    let (code, doc) = diff(&built.root(), &b, &[]);
    assert_eq!(code, Some(1));
    let got = changes(&doc);
    assert!(
        got.iter()
            .any(|c| c.0 == "device" && c.1 == "0000:08:00.0" && c.2 == "removed"),
        "{got:#?}"
    );
    assert!(
        got.contains(&change(
            "pair",
            "0000:07:00.0 → 0000:08:00.0",
            "pair",
            "thru_host_bridge".into(),
            Value::Null
        )),
        "{got:#?}"
    );
    // Text: removed lines start with '-'.
    let out = p2pdoctor()
        .arg("diff")
        .arg(built.root())
        .arg(&b)
        .args(["--color", "never"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  - 0000:08:00.0: endpoint"), "{text}");
}

#[test]
fn lab_snapshots_iommu_on_and_off() {
    let lab = fixtures_dir().join("lab");
    let (code, doc) = diff(
        &lab.join("01-switch.tar.gz"),
        &lab.join("04-switch-iommu.tar.gz"),
        &[],
    );
    assert_eq!(code, Some(1));
    let got = changes(&doc);
    // Linux turned ACS on at the root port when the IOMMU came.
    assert!(
        got.contains(&change(
            "acs",
            "0000:00:03.0",
            "ACS Control",
            "0x0000 (off)".into(),
            "0x001d (SV RR CR UF)".into()
        )),
        "{got:#?}"
    );
    assert!(got.iter().any(|c| c.0 == "cmdline"));
    assert!(got.iter().any(|c| c.0 == "iommu" && c.1 == "host"));
}

#[test]
fn an_unreadable_side_is_exit_3() {
    let built = build("acs_switch");
    let out = p2pdoctor()
        .args(["diff", "/nonexistent/a.tar.gz"])
        .arg(built.root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/a.tar.gz"));
}
