//! What `check` shows (issue 14): devices that do P2P by default, chipset
//! functions with --all-devices, --device/--provider/--client by BDF or OS
//! name, --min-severity, info folding, suppressions with a reason from a
//! config file, the two-tier verdict and its caveats. Run through the real
//! binary on the lab's captures (tests/fixtures/lab) and fixture specs.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn lab(name: &str) -> PathBuf {
    fixtures_dir().join("lab").join(format!("{name}.tar.gz"))
}

fn check(root: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check", "--color", "never"];
    all.extend_from_slice(args);
    let out = run(root, &all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = check(root, &all);
    assert!(matches!(code, 0..=2), "exit {code}: {err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let errors = common::schema::validate(&common::schema::load("check"), &doc);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    (code, doc)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn device_bdfs(doc: &Value) -> Vec<String> {
    doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["bdf"].as_str().unwrap().to_string())
        .collect()
}

fn pair_ends(doc: &Value) -> Vec<(String, String)> {
    doc["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap().to_string(),
                p["client"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn findings_about(doc: &Value, bdf: &str) -> usize {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| strings(&f["subjects"]).iter().any(|s| s == bdf))
        .count()
}

const SATA: &str = "0000:00:1f.2";

#[test]
fn chipset_functions_hidden_by_default_and_shown_with_all_devices() {
    let root = lab("08-host-bridges");
    let (_, quiet) = json(&root, &[]);
    assert!(!device_bdfs(&quiet).contains(&SATA.to_string()));
    assert!(
        pair_ends(&quiet)
            .iter()
            .all(|(p, c)| p != SATA && c != SATA)
    );
    assert_eq!(findings_about(&quiet, SATA), 0);
    let sel = &quiet["selection"];
    assert_eq!(sel["all_devices"], false);
    assert!(
        sel["hidden_devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["bdf"] == SATA && h["reason"] == "chipset")
    );
    assert_eq!(sel["hidden_pairs"], 1);
    assert!(
        sel["hidden_findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"] == "chipset")
    );

    let (_, all) = json(&root, &["--all-devices"]);
    assert!(device_bdfs(&all).contains(&SATA.to_string()));
    assert!(findings_about(&all, SATA) > 0);
    assert_eq!(all["selection"]["hidden_pairs"], 0);
    assert_eq!(
        all["pairs"].as_array().unwrap().len(),
        quiet["pairs"].as_array().unwrap().len() + 1
    );

    // The text says what it left out, and how to see it.
    let (_, text, _) = check(&root, &[]);
    assert!(
        text.contains("not shown: chipset functions (0000:00:1f.2)"),
        "{text}"
    );
    assert!(text.contains("--all-devices shows them"), "{text}");
    // Naming a chipset function shows it without --all-devices.
    let (_, named) = json(&root, &["--device", SATA]);
    assert!(device_bdfs(&named).contains(&SATA.to_string()));
}

#[test]
fn device_by_bdf_and_by_os_name() {
    let root = lab("08-host-bridges");
    // nvme0 is 0000:01:00.0 in this capture (the matrix shows it).
    let (_, by_name) = json(&root, &["--device", "nvme0"]);
    let (_, by_bdf) = json(&root, &["--device", "0000:01:00.0"]);
    assert_eq!(pair_ends(&by_name), pair_ends(&by_bdf));
    let ends = pair_ends(&by_name);
    assert!(!ends.is_empty());
    assert!(
        ends.iter()
            .all(|(p, c)| p == "0000:01:00.0" || c == "0000:01:00.0"),
        "{ends:?}"
    );
    // The P2P401 about 21:00.0 → 41:00.0 is about other devices.
    assert!(by_name["findings"].as_array().unwrap().iter().all(|f| {
        f["rule"] != "P2P401" || strings(&f["subjects"]).contains(&"0000:01:00.0".to_string())
    }));
    assert!(
        by_name["selection"]["hidden_findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"] == "not_selected")
    );
    assert_eq!(strings(&by_name["selection"]["devices"]), ["nvme0"]);

    // --provider and --client pick one end each.
    let (_, one) = json(&root, &["--provider", "nvme2", "--client", "nvme1"]);
    assert_eq!(
        pair_ends(&one),
        [("0000:21:00.0".to_string(), "0000:41:00.0".to_string())]
    );

    // A name that is nowhere: exit 3, and the names that are.
    let (code, _, err) = check(&root, &["--device", "nvme7"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("--device nvme7") && err.contains("0000:01:00.0 (nvme0)"),
        "{err}"
    );
}

#[test]
fn min_severity_hides_lines_not_the_verdict() {
    let root = lab("04-switch-iommu");
    let (code, all) = json(&root, &[]);
    let (code_err, only) = json(&root, &["--min-severity", "error"]);
    assert_eq!(code, 1);
    assert_eq!(
        code_err, code,
        "hiding warnings does not change the exit status"
    );
    assert!(
        only["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "error")
    );
    assert_eq!(only["summary"]["warnings"], all["summary"]["warnings"]);
    assert!(
        only["selection"]["hidden_findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["reason"] == "below_min_severity" && h["rule"] == "P2P110")
    );
    let (_, text, _) = check(&root, &["--min-severity", "error"]);
    assert!(!text.contains("P2P110 virtual-machine"), "{text}");
    assert!(
        text.contains("below --min-severity error (counted above)"),
        "{text}"
    );
}

#[test]
fn info_with_nothing_to_do_is_folded_unless_verbose() {
    let built = build("rule_acs_redirect");
    let (_, text, _) = check(&built.root(), &[]);
    assert!(
        text.contains("1 more info finding with nothing to do (P2P502)"),
        "{text}"
    );
    assert!(!text.contains("· P2P502 iommu-group-shared"), "{text}");
    let (_, verbose, _) = check(&built.root(), &["--verbose"]);
    assert!(verbose.contains("· P2P502 iommu-group-shared"), "{verbose}");
    assert!(!verbose.contains("more info finding"), "{verbose}");
    // JSON lists every finding either way.
    let (_, doc) = json(&built.root(), &[]);
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "P2P502")
    );
    assert_eq!(doc["selection"]["info_folded"], true);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn suppression_with_a_reason_is_counted_and_listed_not_dropped() {
    let root = lab("04-switch-iommu");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "site.toml",
        "# lab guests\n[[suppress]]\nrule = \"virtual-machine\"\nreason = \"the lab runs in QEMU on purpose\"\n",
    );
    let cfg = cfg.to_str().unwrap();
    let (code, doc) = json(&root, &["--config", cfg]);
    assert_eq!(
        code, 0,
        "the only warning is suppressed: --fail-on sees no finding"
    );
    assert_eq!(doc["summary"]["suppressed"], 1);
    assert!(
        doc["summary"]["headline"]
            .as_str()
            .unwrap()
            .contains(&format!("1 suppressed by {cfg}"))
    );
    let s = &doc["suppressed"][0];
    assert_eq!(s["rule"], "P2P110");
    assert_eq!(s["reason"], "the lab runs in QEMU on purpose");
    assert_eq!(s["line"], 2);
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["rule"] != "P2P110")
    );
    let (_, text, _) = check(&root, &["--config", cfg]);
    assert!(
        text.contains("P2P110 virtual-machine: the lab runs in QEMU on purpose"),
        "{text}"
    );

    // A device-scoped suppression matches findings about that device only
    // (here, none: P2P110 is about the host).
    let scoped = write(
        dir.path(),
        "scoped.toml",
        "[[suppress]]\nrule = \"P2P110\"\ndevice = \"nvme0\"\nreason = \"x\"\n",
    );
    let (code, doc) = json(&root, &["--config", scoped.to_str().unwrap()]);
    assert_eq!((code, doc["summary"]["suppressed"].as_u64()), (1, Some(0)));

    // Found without --config: ./p2pdoctor.toml, then $XDG_CONFIG_HOME.
    write(
        dir.path(),
        "cwd/p2pdoctor.toml",
        "[[suppress]]\nrule = \"P2P110\"\nreason = \"here\"\n",
    );
    let out = p2pdoctor()
        .current_dir(dir.path().join("cwd"))
        .args(["--root", root.to_str().unwrap(), "check", "--summary"])
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.contains("1 suppressed by p2pdoctor.toml"), "{line}");
    write(
        dir.path(),
        "xdg/p2pdoctor/config.toml",
        "[[suppress]]\nrule = \"P2P110\"\nreason = \"xdg\"\n",
    );
    let out = p2pdoctor()
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "check",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["suppressed"][0]["reason"], "xdg");
}

#[test]
fn bad_config_names_file_and_line_and_exits_3() {
    let root = lab("04-switch-iommu");
    let dir = tempfile::tempdir().unwrap();
    for (text, at, what) in [
        ("[[suppress]]\nrule = \"P2P110\"\n", ":1:", "no reason"),
        (
            "\n\n[[suppress]]\nrule = \"P2P999\"\nreason = \"r\"\n",
            ":4:",
            "not a p2pdoctor rule",
        ),
        (
            "[[suppress]]\nrule = \"P2P110\"\nreason = \"r\"\nseverity = \"info\"\n",
            ":4:",
            "unknown field",
        ),
    ] {
        let cfg = write(dir.path(), "bad.toml", text);
        let cfg = cfg.to_str().unwrap();
        let (code, out, err) = check(&root, &["--config", cfg]);
        assert_eq!(code, 3, "{text:?}: {out}{err}");
        assert!(err.contains(&format!("{cfg}{at}")), "{text:?}: {err}");
        assert!(err.contains(what), "{text:?}: {err}");
    }
}

#[test]
fn grouped_p2p401_names_each_pairs_host_bridges() {
    let (_, doc) = json(&lab("08-host-bridges"), &[]);
    let p401: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "P2P401")
        .collect();
    let about = |b: &str| {
        p401.iter()
            .find(|f| strings(&f["subjects"]).contains(&b.to_string()))
            .unwrap_or_else(|| panic!("no P2P401 about {b}: {p401:?}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let to_01 = about("0000:01:00.0");
    let to_41 = about("0000:41:00.0");
    assert!(
        to_01.contains("across host bridges pci0000:20 and pci0000:00"),
        "{to_01}"
    );
    assert!(
        to_41.contains("across host bridges pci0000:20 and pci0000:40"),
        "{to_41}"
    );
    assert!(!to_41.contains("pci0000:00"), "{to_41}");
    // Each finding's kernel lines are its own pairs'.
    for f in &p401 {
        let subjects = strings(&f["subjects"]);
        for e in strings(&f["evidence"])
            .iter()
            .filter(|e| e.starts_with("kernel: "))
        {
            assert!(
                subjects.iter().any(|s| e.contains(s.as_str())),
                "{e} in {subjects:?}"
            );
        }
    }
}

#[test]
fn verdict_has_two_tiers_in_text_and_json() {
    let root = lab("08-host-bridges");
    let (code, doc) = json(&root, &[]);
    let v = &doc["summary"]["verdict"];
    assert_eq!(v["predicted"], "errors");
    assert_eq!(code, 2);
    assert!(v["verified"].is_null(), "no transfer was tried: {v}");
    assert_eq!(doc["schema_version"], 2);
    let (_, text, _) = check(&root, &[]);
    assert!(
        text.contains("predicted by the kernel's rules; not verified by a transfer"),
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "summary: errors (predicted by the kernel's rules) · 2 errors, 1 warning, 0 info · pairs: 1 allowed, 2 refused"
    );
    let (_, line, _) = check(&root, &["--summary"]);
    assert!(
        line.ends_with("(predicted by the kernel's rules)\n"),
        "{line}"
    );
}

#[test]
fn refused_pairs_next_to_no_error_say_why() {
    // 01-switch with the SATA controller: its refused pair is info only.
    let (_, doc) = json(&lab("01-switch"), &["--all-devices"]);
    assert_ne!(doc["summary"]["verdict"]["predicted"], "errors");
    assert!(doc["summary"]["not_supported"].as_u64().unwrap() > 0);
    let caveats = doc["summary"]["verdict"]["caveats"].as_array().unwrap();
    let c = caveats
        .iter()
        .find(|c| c["kind"] == "refused_minor_pairs")
        .expect("a caveat");
    assert!(c["message"].as_str().unwrap().contains(SATA), "{c}");
}

#[test]
fn iommu_without_acs_carries_the_labs_caveat() {
    // Lab case 4: a switch, the IOMMU translating, no ACS redirect: the
    // kernel allows bus addresses and QEMU's IOMMU faulted the write.
    let (_, doc) = json(&lab("04-switch-iommu"), &[]);
    let caveats = doc["summary"]["verdict"]["caveats"].as_array().unwrap();
    let c = caveats
        .iter()
        .find(|c| c["kind"] == "iommu_without_acs")
        .expect("the caveat");
    let m = c["message"].as_str().unwrap();
    assert!(
        m.contains("0000:03:00.0 → 0000:04:00.0") && m.contains("check --confirm"),
        "{m}"
    );
    let (_, text, _) = check(&lab("04-switch-iommu"), &[]);
    assert!(
        text.contains("caveat: the IOMMU is on (translated)"),
        "{text}"
    );
    // Without an IOMMU (lab case 1) there is nothing to warn about.
    let (_, plain) = json(&lab("01-switch"), &[]);
    assert!(
        plain["summary"]["verdict"]["caveats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] != "iommu_without_acs")
    );
}
