//! `p2pdoctor check`, `explain` and `rules` run as a user would: exit
//! statuses, the JSON contract (schema/check.schema.json) on every fixture,
//! colour, and a snapshot of the human report.

mod common;

use common::*;
use serde_json::Value;

fn schema() -> Value {
    common::schema::load("check")
}

fn check(root: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = run(root, &all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every fixture: text and JSON work, the JSON keeps its contract, and the
/// exit status matches the verdict.
#[test]
fn every_fixture_checks_and_json_matches_the_schema() {
    let schema = schema();
    for name in spec_names() {
        let built = build(&name);
        let root = built.root();
        for extra in [
            &[][..],
            &["--all-pairs"],
            &["--all-pairs", "--expand-pairs"],
        ] {
            let mut args = vec!["--format", "json"];
            args.extend_from_slice(extra);
            let (code, out, err) = check(&root, &args);
            assert!(
                matches!(code, 0..=2),
                "{name} {extra:?}: exit {code}: {err}"
            );
            let doc: Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {out}"));
            let errors = common::schema::validate(&schema, &doc);
            assert!(
                errors.is_empty(),
                "{name}: JSON breaks its schema:\n{}",
                errors.join("\n")
            );
            let verdict = doc["summary"]["verdict"]["predicted"].as_str().unwrap();
            let want = match verdict {
                "errors" => 2,
                "warnings" => 1,
                _ => 0,
            };
            assert_eq!(code, want, "{name}: exit {code} for verdict {verdict}");
            let doc = expand_pairs(&doc);
            for p in doc["pairs"].as_array().unwrap() {
                let bdf = |k: &str| {
                    p[k].as_str()
                        .unwrap()
                        .parse::<p2pdoctor::pci::Bdf>()
                        .unwrap()
                };
                // The provider with itself (issue 11 item 1) is the only
                // pair at distance 0.
                if bdf("provider") == bdf("client") {
                    assert_eq!(p["distance"], 0, "{name}");
                } else {
                    assert_ne!(p["distance"], 0, "{name}");
                }
            }
        }
        let (code, text, err) = check(&root, &["--color", "never"]);
        assert!(matches!(code, 0..=2), "{name}: {err}");
        assert!(text.contains("verdict:"), "{name}");
        assert!(
            !text.contains('\u{1b}'),
            "{name}: colour with --color never"
        );
        let (_, colored, _) = check(&root, &["--color", "always"]);
        assert!(
            colored.contains('\u{1b}'),
            "{name}: no colour with --color always"
        );
    }
}

#[test]
fn no_color_turns_auto_off() {
    let built = build("rule_acs_redirect");
    let out = p2pdoctor()
        .env("NO_COLOR", "1")
        .arg("--root")
        .arg(built.root())
        .arg("check")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}

#[test]
fn exit_statuses_and_fail_on() {
    for (spec, default, fail_on_error) in [
        ("rule_clean", 0, 0),
        ("rule_acs_detour", 1, 0),
        ("rule_nonroot", 1, 0),
        ("rule_acs_redirect", 2, 2),
        ("rule_not_whitelisted", 2, 2),
    ] {
        let built = build(spec);
        let (code, _, err) = check(&built.root(), &[]);
        assert_eq!(code, default, "{spec}: {err}");
        let (code, _, _) = check(&built.root(), &["--fail-on", "error"]);
        assert_eq!(code, fail_on_error, "{spec} --fail-on error");
    }
    // The tool itself failing is 3.
    let out = p2pdoctor()
        .args(["--root", "/nonexistent/p2pdoctor-root", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = p2pdoctor()
        .args(["check", "--fail-on", "maybe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn check_writes_to_a_file() {
    let built = build("rule_acs_redirect");
    let file = built.dir.path().join("report.json");
    let (code, out, _) = check(
        &built.root(),
        &["--format", "json", "-o", file.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let doc = expand_pairs(&doc);
    let pair = doc["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] != p["client"])
        .unwrap();
    assert_eq!(pair["map_type"], "not_supported");
    assert_eq!(pair["acs_redirect"][0], "0000:00:03.0");
    assert_eq!(doc["findings"][0]["rule"], "P2P301");
    assert_eq!(doc["findings"][0]["status"], "predicted");
}

#[test]
fn help_documents_exit_codes_and_examples() {
    let out = p2pdoctor().args(["check", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    for want in [
        "Exit status:",
        "--fail-on",
        "--all-pairs",
        "Examples:",
        "inconclusive",
    ] {
        assert!(help.contains(want), "check --help lacks {want}:\n{help}");
    }
}

#[test]
fn explain_reads_like_rustc_explain() {
    for key in ["P2P301", "p2p301", "acs-redirect"] {
        let out = p2pdoctor()
            .args(["explain", key, "--color", "never"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("P2P301 acs-redirect: "), "{text}");
        for section in [
            "What it checks",
            "Why it matters",
            "Example",
            "How to fix",
            "How to confirm",
            "References",
        ] {
            assert!(text.contains(section), "explain {key} lacks {section}");
        }
        assert!(text.contains("pci=disable_acs_redir="));
    }
    let out = p2pdoctor().args(["explain", "P2P30"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no rule `P2P30`") && err.contains("P2P301"),
        "{err}"
    );
}

#[test]
fn rules_lists_the_catalog() {
    let out = p2pdoctor()
        .args(["rules", "--color", "never"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for r in &p2pdoctor::diagnose::RULES {
        assert!(
            text.contains(r.id()) && text.contains(r.name()),
            "{}",
            r.id()
        );
    }
    let out = p2pdoctor()
        .args(["rules", "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    common::schema::assert_valid("rules", &doc);
    let rules = doc["rules"].as_array().unwrap();
    assert_eq!(rules.len(), p2pdoctor::diagnose::RULES.len());
    for r in rules {
        for k in [
            "id", "name", "title", "severity", "checks", "why", "example", "fix", "confirm",
        ] {
            assert!(r[k].is_string(), "{k} of {}", r["id"]);
        }
    }
}

#[test]
fn a_rules_directory_replaces_the_built_in_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let catalog = std::fs::read_to_string(src.join("catalog.toml"))
        .unwrap()
        .replace(
            "The kernel is built without CONFIG_PCI_P2PDMA",
            "Local wording for P2P101",
        );
    std::fs::write(dir.path().join("catalog.toml"), catalog).unwrap();
    std::fs::copy(src.join("kernel.toml"), dir.path().join("kernel.toml")).unwrap();
    let out = p2pdoctor()
        .args(["explain", "P2P101", "--rules-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Local wording for P2P101"));
    // A broken table is a tool failure with the file named.
    std::fs::write(dir.path().join("kernel.toml"), "nonsense = [").unwrap();
    let built = build("rule_clean");
    let out = run(
        &built.root(),
        &["check", "--rules-dir", dir.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel.toml"));
}

/// The human report, as a reviewed snapshot.
#[test]
fn report_snapshot() {
    for spec in [
        "rule_acs_redirect",
        "rule_nonroot",
        "rule_host_bridges_numa",
    ] {
        let built = build(spec);
        let (_, text, _) = check(&built.root(), &["--color", "never"]);
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("source: ") {
                    "source: <fixture>"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!(spec, text);
    }
}
