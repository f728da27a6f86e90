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
        ("report", "all\\-pairs"),
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

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = p2pdoctor()
        .args(["man", "--dir"])
        .arg(dir.path().join("man1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = stdout_of(&["--help"]);
    // Every command the top-level help lists (but `help`) has its page,
    // named as man(1) looks it up, and nothing else is written.
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut expected: Vec<String> = commands
        .iter()
        .map(|c| format!("p2pdoctor-{c}.1"))
        .collect();
    expected.push("p2pdoctor.1".into());
    expected.sort();
    let mut written: Vec<String> = std::fs::read_dir(dir.path().join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, expected);
    for page in &written {
        let text = std::fs::read_to_string(dir.path().join("man1").join(page)).unwrap();
        let name = page.trim_end_matches(".1");
        assert!(
            text.contains(&format!(".TH {name} 1")),
            "{page}: no .TH {name}"
        );
    }
}

#[test]
fn help_keeps_global_options_apart_and_lists_every_exit_status() {
    let top = stdout_of(&["--help"]);
    assert!(top.contains("Global options:"), "{top}");
    for code in ["  0 ", "  1 ", "  2 ", "  3 ", "130 ", "141 "] {
        assert!(top.contains(code), "exit status {code} missing from --help");
    }
    // Commands that read no machine do not offer --root (it would do
    // nothing); those that read one do, under the global heading.
    for cmd in ["explain", "rules", "man", "completions"] {
        let h = stdout_of(&[cmd, "--help"]);
        assert!(!h.contains("--root"), "`{cmd} --help` offers --root");
    }
    for cmd in [
        "topo", "check", "report", "snapshot", "diff", "baseline", "fleet", "copy",
    ] {
        let h = stdout_of(&[cmd, "--help"]);
        let global = h
            .find("Global options:")
            .unwrap_or_else(|| panic!("{cmd}: no Global options"));
        let root = h
            .find("\n      --root <")
            .unwrap_or_else(|| panic!("{cmd}: no --root"));
        assert!(root > global, "{cmd}: --root is not under Global options");
    }
    // `--root` given to such a command anyway changes nothing.
    let a = stdout_of(&["explain", "P2P301"]);
    let b = stdout_of(&["--root", "/nonexistent", "explain", "P2P301"]);
    assert_eq!(a, b);
}

#[test]
fn each_command_describes_its_own_formats() {
    // The text format's description belongs to the command: no command
    // describes its text output as check's "pair matrix" but check.
    for (cmd, own) in [
        ("diff", "most consequential first"),
        ("fleet", "Families"),
        ("rules", "One line per rule"),
        ("copy", "throughput"),
        ("check", "pair matrix"),
    ] {
        let h = stdout_of(&[cmd, "--help"]);
        let at = h
            .find("\n      --format <")
            .unwrap_or_else(|| panic!("{cmd}: no --format"));
        let formats = &h[at + 1..];
        let formats = &formats[..formats.find("\n\n      -").unwrap_or(formats.len())];
        assert!(
            formats.contains(own),
            "{cmd} --format does not say {own:?}:\n{formats}"
        );
        if cmd != "check" {
            assert!(
                !formats.contains("pair matrix"),
                "{cmd} --format describes check's output"
            );
        }
    }
}
