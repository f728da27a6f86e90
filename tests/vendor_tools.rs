//! Vendor tools on the live machine: `nvidia-smi` is run read-only, with a
//! time limit, only when it is on the PATH, and its output travels in a
//! snapshot. A stand-in script plays the tool here.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use serde_json::Value;

const MATRIX: &str =
    "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tPHB\t0-3\t0\nGPU1\tPHB\t X \t0-3\t0\n";

/// A directory holding an executable `nvidia-smi` with `body` as script.
fn fake_tool(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nvidia-smi");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn live_check(tool: &Path) -> Value {
    let out = p2pdoctor()
        .env("PATH", path_with(tool))
        .args(["--root", "/", "check", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Snapshots this machine with `PATH` set to `snapshot_path`, then
/// checks the snapshot with no tool on the PATH: the check's JSON.
fn check_of_live_snapshot(snapshot_path: &str) -> Value {
    let mut cmd = p2pdoctor();
    cmd.env("PATH", snapshot_path).args(["--root", "/"]);
    let (_dir, snap) = snapshot(cmd);
    let out = p2pdoctor()
        .env("PATH", "/nonexistent")
        .arg("--root")
        .arg(&snap)
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_tool_is_run_on_the_live_machine_and_kept_in_a_snapshot() {
    let tool = fake_tool(&format!(
        "case \"$1\" in topo) printf '{}' ;; *) echo '0, 00000000:00:00.0' ;; esac",
        MATRIX.replace('\t', "\\t").replace('\n', "\\n")
    ));
    let doc = live_check(tool.path());
    let v = &doc["vendor_topology"];
    assert_eq!(v["source"], "nvidia-smi topo -m (run now)", "{v}");
    assert_eq!(v["devices"][0]["name"], "GPU0");
    assert_eq!(v["pairs"][0]["vendor"], "PHB");
    common::schema::assert_valid("check", &doc);

    // Read elsewhere, without the tool: the kept output is compared.
    let doc = check_of_live_snapshot(&path_with(tool.path()));
    assert_eq!(
        doc["vendor_topology"]["source"],
        "p2pdoctor/nvidia-smi-topo-m.txt in the capture"
    );
    assert_eq!(doc["vendor_topology"]["pairs"][0]["vendor"], "PHB");
}

#[test]
fn a_failing_tool_or_no_tool_leaves_no_comparison() {
    let tool = fake_tool("echo 'NVIDIA-SMI has failed' >&2; exit 9");
    assert_eq!(live_check(tool.path())["vendor_topology"], Value::Null);
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(live_check(empty.path())["vendor_topology"], Value::Null);
    // topo never runs it.
    let marker = tempfile::tempdir().unwrap();
    let ran = marker.path().join("ran");
    let tool = fake_tool(&format!("touch {}", ran.display()));
    let out = p2pdoctor()
        .env("PATH", path_with(tool.path()))
        .args(["--root", "/", "topo"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!ran.exists(), "topo ran nvidia-smi");
}

/// What tells a virtual machine (the CPU's hypervisor bit, DMI strings)
/// travels in a snapshot: the capture says what the live run says.
#[test]
fn a_snapshot_keeps_what_tells_a_virtual_machine() {
    let live = live_check(Path::new("/nonexistent"));
    let doc = check_of_live_snapshot("/nonexistent");
    assert_eq!(
        doc["host"]["virtualization"]["hypervisor"],
        live["host"]["virtualization"]["hypervisor"]
    );
}

/// `nvidia-smi topo -p2p r` runs beside `topo -m` and its output travels in
/// the snapshot, where check reads it back.
#[test]
fn the_p2p_read_matrix_is_run_and_kept_in_a_snapshot() {
    let p2p = " \tGPU0\tGPU1\t\n GPU0\tX\tCNS\t\n GPU1\tCNS\tX\t\n";
    let tool = fake_tool(&format!(
        "case \"$1 $2\" in 'topo -p2p') printf '{}' ;; 'topo -m') printf '{}' ;; *) echo '0, 00000000:00:00.0' ;; esac",
        p2p.replace('\t', "\\t").replace('\n', "\\n"),
        MATRIX.replace('\t', "\\t").replace('\n', "\\n")
    ));
    let mut cmd = p2pdoctor();
    cmd.env("PATH", path_with(tool.path()))
        .args(["--root", "/"]);
    let (_dir, snap) = snapshot(cmd);
    let list = std::process::Command::new("tar")
        .arg("xzOf")
        .arg(&snap)
        .arg("p2pdoctor/nvidia-smi-topo-p2p-r.txt")
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let kept = String::from_utf8_lossy(&list.stdout);
    let m = p2pdoctor::scan::nvidia::parse_p2p_matrix(&kept).expect("the kept output parses");
    assert_eq!(m.cells[0][1], "CNS");
}
