//! The deployment recipes in deploy/, each run for real by its shell
//! harness in tests/deploy/ against the binary under test and fixture
//! trees: the Slurm prolog (stubs for scontrol and logger), the Kubernetes
//! DaemonSet's loop and the node-problem-detector plugin (and, with
//! kubernetes-validate installed, the manifests against the bundled
//! Kubernetes schemas), and the Ansible playbook (ansible-playbook against
//! localhost and two more inventory names for this machine).
//!
//! Tools that are missing make their part skip, unless
//! P2PDOCTOR_REQUIRE_ORACLES is set (.ci/run installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Python with PyYAML (kubernetes-validate brings it along).
fn have_pyyaml() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("P2PDOCTOR_REQUIRE_ORACLES").is_none(),
            "python3 with PyYAML is required (P2PDOCTOR_REQUIRE_ORACLES) but missing"
        );
        eprintln!("python3 with PyYAML not installed: skipping the manifest checks");
    }
    ok
}

/// Runs tests/deploy/NAME with the variables; panics with its output unless it passes.
fn harness(name: &str, vars: &[(&str, &Path)], flags: &[(&str, &str)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/deploy")
        .join(name);
    let mut cmd = Command::new("sh");
    cmd.arg(&script)
        .env("P2PDOCTOR_BIN", env!("CARGO_BIN_EXE_p2pdoctor"))
        .env_remove("P2PDOCTOR_ROOT")
        // Empty: no names file, IDs stay hex, whatever the machine has.
        .env("P2PDOCTOR_PCI_IDS", "");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    for (k, v) in flags {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tests/deploy/{name} failed:\n{text}");
    assert!(text.contains("all cases pass"), "{text}");
    eprintln!("{text}");
}

/// The acs_switch spec with the GPU's link trained x8: the outlier.
fn narrow_gpu_link() -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(fixtures_dir().join("specs/acs_switch.toml")).unwrap();
    let mut v: toml::Value = toml::from_str(&text).unwrap();
    v["host_bridge"][0]["device"][2]["children"][0]["children"][3]["children"][0]["link"]["width"] =
        toml::Value::Integer(8);
    let spec = p2pdoctor_fixture::Spec::from_toml(&toml::to_string(&v).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    p2pdoctor_fixture::build(&spec, &root).unwrap();
    (dir, root)
}

#[test]
fn slurm_prolog_drains_on_errors_and_only_then() {
    if !have("timeout") {
        return;
    }
    let (clean, warn, error) = (
        build("rule_clean"),
        build("rule_acs_detour"),
        build("rule_acs_redirect"),
    );
    harness(
        "slurm_prolog.sh",
        &[
            ("CLEAN_ROOT", &clean.root()),
            ("WARN_ROOT", &warn.root()),
            ("ERROR_ROOT", &error.root()),
        ],
        &[],
    );
}

#[test]
fn kubernetes_loop_and_node_problem_detector_plugin() {
    let (clean, error) = (build("rule_clean"), build("rule_acs_redirect"));
    let validate = have("kubernetes-validate") && have_pyyaml();
    let promtool = have("promtool");
    harness(
        "kubernetes.sh",
        &[("CLEAN_ROOT", &clean.root()), ("ERROR_ROOT", &error.root())],
        &[
            ("VALIDATE", if validate { "1" } else { "0" }),
            ("PROMTOOL", if promtool { "1" } else { "0" }),
        ],
    );
}

#[test]
fn ansible_playbook_snapshots_every_host_and_runs_fleet() {
    if !have("ansible-playbook") {
        return;
    }
    let good = build("acs_switch");
    let (_odd_dir, odd) = narrow_gpu_link();
    harness(
        "ansible.sh",
        &[("GOOD_ROOT", &good.root()), ("ODD_ROOT", &odd)],
        &[],
    );
}
