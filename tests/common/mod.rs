//! Helpers shared by the integration tests: building fixture trees from
//! the specs in tests/fixtures/specs and running the real binary on them.
#![allow(dead_code)]

pub mod schema;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// All spec names (file stems) in tests/fixtures/specs, sorted.
pub fn spec_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir().join("specs"))
        .expect("tests/fixtures/specs")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A fixture tree built into a temporary directory (removed on drop).
pub struct Built {
    pub dir: tempfile::TempDir,
}

impl Built {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

pub fn build(spec_name: &str) -> Built {
    let path = fixtures_dir()
        .join("specs")
        .join(format!("{spec_name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = p2pdoctor_fixture::Spec::from_toml(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = tempfile::tempdir().unwrap();
    p2pdoctor_fixture::build(&spec, &dir.path().join("root"))
        .unwrap_or_else(|e| panic!("building {spec_name}: {e}"));
    Built { dir }
}

/// The binary with a clean, deterministic environment.
pub fn p2pdoctor() -> Command {
    let mut c = Command::cargo_bin("p2pdoctor").unwrap();
    c.env_remove("P2PDOCTOR_ROOT")
        .env_remove("NO_COLOR")
        // Empty: no names file, IDs stay hex, whatever the machine has.
        .env("P2PDOCTOR_PCI_IDS", "")
        // No config file of the person running the tests (suppressions).
        .env("XDG_CONFIG_HOME", "/nonexistent/p2pdoctor-tests");
    c
}

pub fn run(root: &Path, args: &[&str]) -> Output {
    p2pdoctor()
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

pub fn stdout_ok(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    assert!(
        out.status.success(),
        "p2pdoctor {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn topo_json(root: &Path) -> serde_json::Value {
    serde_json::from_str(&stdout_ok(root, &["topo", "--format", "json"])).unwrap()
}

/// Whether a peer tool is installed; with P2PDOCTOR_REQUIRE_ORACLES set (CI)
/// a missing tool is a failure, otherwise the test says so and skips.
pub fn have_tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("P2PDOCTOR_REQUIRE_ORACLES").is_some() {
            panic!("{name} is required (P2PDOCTOR_REQUIRE_ORACLES is set) but not installed");
        }
        eprintln!("SKIPPED: {name} is not installed");
    }
    found
}

/// Whether an external tool (an oracle: promtool, ansible-playbook, ...)
/// is on the PATH. Without it a test says so and skips its check, unless
/// P2PDOCTOR_REQUIRE_ORACLES is set (as .ci/run sets it), where a missing
/// tool fails the test.
pub fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("P2PDOCTOR_REQUIRE_ORACLES").is_none(),
            "{tool} is required (P2PDOCTOR_REQUIRE_ORACLES) but not installed"
        );
        eprintln!("{tool} not installed: skipping its check");
    }
    found
}

/// The acs_switch spec, changed by `edit`, built into a temporary tree
/// (removed when the returned directory is dropped).
pub fn variant(edit: impl FnOnce(&mut toml::Value)) -> (tempfile::TempDir, PathBuf) {
    variant_of("acs_switch", edit)
}

/// `tests/fixtures/specs/<spec>.toml`, changed by `edit`, built into a
/// temporary tree (removed when the returned directory is dropped).
pub fn variant_of(spec: &str, edit: impl FnOnce(&mut toml::Value)) -> (tempfile::TempDir, PathBuf) {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("specs/{spec}.toml"))).unwrap();
    let mut v: toml::Value = toml::from_str(&text).unwrap();
    edit(&mut v);
    let spec = p2pdoctor_fixture::Spec::from_toml(&toml::to_string(&v).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    p2pdoctor_fixture::build(&spec, &root).unwrap();
    (dir, root)
}

/// host_bridge[0].device[k] of a spec.
pub fn root_device(v: &mut toml::Value, k: usize) -> &mut toml::Value {
    &mut v["host_bridge"][0]["device"][k]
}

/// acs_switch's downstream port number `k` (08.0, 09.0, 0a.0, 10.0).
pub fn downstream(v: &mut toml::Value, k: usize) -> &mut toml::Value {
    &mut root_device(v, 2)["children"][0]["children"][k]
}

/// `p2pdoctor --root FILE ARGS` as JSON; the run must exit 0, 1 or 2 (a
/// diagnosis, whatever it found).
pub fn json_on(file: &Path, args: &[&str]) -> serde_json::Value {
    let out = p2pdoctor()
        .arg("--root")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "{} {args:?}: exit {:?}: {}",
        file.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A `check --format json` document with every pair's row joined to its
/// path, as `check --expand-pairs` writes it: the path's fields, and its
/// kernel lines with `{client}` (the client's driver and address, from
/// `devices[]`) and `{provider}` filled in. Tests that read a pair's
/// fields use it; `tests/consistency.rs` holds it equal to the real
/// `--expand-pairs` output.
pub fn expand_pairs(doc: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let mut doc = doc.clone();
    let drivers: std::collections::HashMap<String, String> = doc["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["bdf"].as_str().unwrap().to_string(),
                d["driver"].as_str().unwrap_or("pci").to_string(),
            )
        })
        .collect();
    let paths = doc["paths"].as_array().cloned().unwrap_or_default();
    if let Some(pairs) = doc["pairs"].as_array_mut() {
        for row in pairs {
            let path = &paths[row["path"].as_u64().unwrap() as usize];
            let provider = row["provider"].as_str().unwrap().to_string();
            let client = row["client"].as_str().unwrap().to_string();
            let client_name = format!("{} {client}", drivers[&client]);
            let obj = row.as_object_mut().unwrap();
            for (k, v) in path.as_object().unwrap() {
                if k == "id" {
                    continue;
                }
                let v = if k == "kernel_messages" {
                    Value::Array(
                        v.as_array()
                            .unwrap()
                            .iter()
                            .map(|l| {
                                Value::String(
                                    l.as_str()
                                        .unwrap()
                                        .replace("{client}", &client_name)
                                        .replace("{provider}", &provider),
                                )
                            })
                            .collect(),
                    )
                } else {
                    v.clone()
                };
                obj.insert(k.clone(), v);
            }
        }
    }
    doc
}

/// Runs `cmd` (a `p2pdoctor()` with its root and environment set) with
/// `snapshot -o` into a temporary file, which must succeed: the archive's
/// path, inside the returned directory.
pub fn snapshot(mut cmd: Command) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("s.tar.gz");
    let out = cmd.args(["snapshot", "-o"]).arg(&snap).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, snap)
}
