//! The tool documents itself: a man page per command generated from the
//! clap definitions, shell completions, and --version with the revision.

mod common;

use std::process::Command as Process;

use common::*;

fn stdout_of(args: &[&str]) -> String {
    let out = p2pdoctor().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_command_has_a_man_page_with_its_options() {
    let top = stdout_of(&["man"]);
    assert!(
        top.contains(".TH p2pdoctor 1"),
        "{}",
        &top[..200.min(top.len())]
    );
    for (cmd, flag) in [
        ("topo", "format"),
        ("check", "all\\-pairs"),
        ("check", "role"),
        ("copy", "write"),
        ("diff", "ignore"),
        ("snapshot", "output"),
        ("restore", "journal\\-dir"),
        ("explain", "rules\\-dir"),
        ("rules", "format"),
        ("completions", "SHELL"),
    ] {
        let page = stdout_of(&["man", cmd]);
        assert!(
            page.contains(&format!(".TH p2pdoctor-{cmd} 1")),
            "{cmd}: {}",
            &page[..200.min(page.len())]
        );
        assert!(page.contains(flag), "{cmd}: no {flag}");
    }
    let out = p2pdoctor().args(["man", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the commands are: topo"));
}

#[test]
fn completions_are_valid_scripts() {
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("p2pdoctor") && bash.contains("--all-pairs"));
    // bash -n parses without running.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p2pdoctor.bash");
    std::fs::write(&path, &bash).unwrap();
    let ok = Process::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "bash -n rejects the completion script");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(
            stdout_of(&["completions", shell]).contains("p2pdoctor"),
            "{shell}"
        );
    }
}

#[test]
fn version_names_the_revision() {
    let v = stdout_of(&["--version"]);
    assert!(
        v.starts_with(&format!("p2pdoctor {} (git ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
}

/// A names file asked for by name must exist; an output that cannot be
/// written is named as the user gave it.
#[test]
fn a_missing_names_file_and_an_unwritable_output_are_errors_that_say_what() {
    let built = build("rule_clean");
    let out = p2pdoctor()
        .env("P2PDOCTOR_PCI_IDS", "/nonexistent/pci.ids")
        .arg("--root")
        .arg(built.root())
        .arg("topo")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("P2PDOCTOR_PCI_IDS=/nonexistent/pci.ids does not exist"),
        "{err}"
    );
    // --no-names does not need it.
    let out = p2pdoctor()
        .env("P2PDOCTOR_PCI_IDS", "/nonexistent/pci.ids")
        .arg("--root")
        .arg(built.root())
        .args(["--no-names", "topo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let out = p2pdoctor()
        .arg("--root")
        .arg(built.root())
        .args(["check", "-o", "/nonexistent/dir/report.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write /nonexistent/dir/report.txt"),
        "{err}"
    );
}
