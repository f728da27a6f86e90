//! `snapshot --redact`: nothing identifying leaves in the archive, the
//! manifest says what was replaced, and the analysis of the redacted
//! snapshot is the analysis of the original.

mod common;

use std::io::Read;
use std::path::Path;

use common::{json_on, p2pdoctor, root_device, variant};
use serde_json::Value;

const HOST: &str = "db-prod-eu-west-17";
const DSN: u64 = 0x00a0_c9ff_fe12_3456;
/// PXE puts the boot NIC's MAC on the command line (BOOTIF=01-<mac>).
const MAC: &str = "0c-42-a1-5e-7f-10";
const UUID: &str = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";
const NVME_SERIAL: &str = "CVFT5123000B800CGN";

fn machine() -> (tempfile::TempDir, std::path::PathBuf) {
    variant(|v| {
        v["host"]["hostname"] = HOST.into();
        v["host"]["cmdline"] =
            format!("BOOT_IMAGE=/vmlinuz root=UUID={UUID} ro quiet BOOTIF=01-{MAC}").into();
        // The NVMe drive on its own root port gets a serial number in
        // config space too (two functions would share it).
        root_device(v, 1)["children"][0]
            .as_table_mut()
            .unwrap()
            .insert("dsn".into(), toml::Value::Integer(DSN as i64));
    })
}

fn snapshot(root: &Path, out: &Path, redact: bool) -> String {
    let mut cmd = p2pdoctor();
    cmd.arg("--root")
        .arg(root)
        .args(["snapshot", "-o"])
        .arg(out);
    if redact {
        cmd.arg("--redact");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stderr).unwrap()
}

/// Every file in the archive: (path, bytes).
fn files(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(archive).unwrap());
    let mut tar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.push((path, b));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Drops what is allowed to differ: the host name, serials and NQNs (as
/// values), the raw command line (its UUID and MAC), where the input was
/// read from, and the run's tool block.
fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "hostname",
                "dsn",
                "subsysnqn",
                "raw",
                "source",
                "tool",
                "sources",
            ] {
                m.remove(k);
            }
            m.values_mut().for_each(strip);
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Where two JSON values first differ, as a path.
fn first_difference(a: &Value, b: &Value, at: String) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if w != v => return first_difference(v, w, format!("{at}.{k}")),
                    None => return format!("{at}.{k} (only in the first)"),
                    _ => {}
                }
            }
            format!("{at} (keys only in the second)")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]")))
            .unwrap_or(at),
        _ => format!("{at}: {a} vs {b}"),
    }
}

#[test]
fn nothing_identifying_is_left_and_the_analysis_is_unchanged() {
    let (dir, root) = machine();
    let plain = dir.path().join("plain.tar.gz");
    let red = dir.path().join("redacted.tar.gz");
    snapshot(&root, &plain, false);
    let said = snapshot(&root, &red, true);
    assert!(said.contains("redacted (listed in the manifest)"), "{said}");

    // The plain snapshot holds every secret: the test would notice if the
    // fixture stopped carrying one.
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("host name", HOST.as_bytes().to_vec()),
        ("DSN", DSN.to_le_bytes().to_vec()),
        ("MAC", MAC.as_bytes().to_vec()),
        ("UUID", UUID.as_bytes().to_vec()),
        ("NVMe serial", NVME_SERIAL.as_bytes().to_vec()),
    ];
    let plain_files = files(&plain);
    for (what, s) in &secrets {
        assert!(
            plain_files.iter().any(|(_, b)| contains(b, s)),
            "the plain snapshot lacks the {what}: the fixture no longer tests it"
        );
    }
    let red_files = files(&red);
    for (path, b) in &red_files {
        for (what, s) in &secrets {
            assert!(!contains(b, s), "{path} still holds the {what}");
        }
    }

    // The manifest names each kind, with counts and files.
    let manifest: Value = serde_json::from_slice(
        &red_files
            .iter()
            .find(|(p, _)| p == "p2pdoctor-manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    common::schema::assert_valid("snapshot", &manifest);
    let kinds = manifest["redacted"].as_array().expect("redacted is a list");
    let what: Vec<&str> = kinds.iter().map(|k| k["what"].as_str().unwrap()).collect();
    for expected in [
        "host name",
        "PCIe device serial",
        "NVMe subsystem NQNs",
        "MAC-like",
        "UUIDs",
    ] {
        assert!(
            what.iter().any(|w| w.starts_with(expected)),
            "{expected} not listed in {what:?}"
        );
    }
    for k in kinds {
        assert!(k["count"].as_u64().unwrap() >= 1);
        assert!(!k["files"].as_array().unwrap().is_empty());
    }
    assert!(
        manifest["hostname"]
            .as_str()
            .unwrap()
            .starts_with("redacted-"),
        "{}",
        manifest["hostname"]
    );
    let plain_manifest: Value = serde_json::from_slice(
        &plain_files
            .iter()
            .find(|(p, _)| p == "p2pdoctor-manifest.json")
            .unwrap()
            .1,
    )
    .unwrap();
    common::schema::assert_valid("snapshot", &plain_manifest);
    assert_eq!(plain_manifest["redacted"], Value::Null);

    // Same analysis: topology and check agree apart from the replaced
    // values themselves.
    for args in [
        &["topo", "--format", "json"][..],
        &["check", "--all-pairs", "--format", "json"][..],
    ] {
        let mut a = json_on(&plain, args);
        let mut b = json_on(&red, args);
        strip(&mut a);
        strip(&mut b);
        assert!(
            a == b,
            "{args:?} differs between the plain and the redacted snapshot at {}",
            first_difference(&a, &b, String::new())
        );
    }
    // The serial is still there, as a pseudonym: a device keeps having one
    // (rules and diff see a serial), but not the original.
    let topo = json_on(&red, &["topo", "--format", "json"]);
    let dsns: Vec<&str> = topo["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["dsn"].as_str())
        .collect();
    assert_eq!(dsns.len(), 1, "{dsns:?}");
    assert_ne!(dsns[0], format!("{DSN:016x}"));
}

#[test]
fn two_redacted_snapshots_of_one_machine_cannot_be_matched() {
    let (dir, root) = machine();
    let a = dir.path().join("a.tar.gz");
    let b = dir.path().join("b.tar.gz");
    snapshot(&root, &a, true);
    snapshot(&root, &b, true);
    let host = |p: &Path| json_on(p, &["topo", "--format", "json"])["host"]["hostname"].clone();
    assert_ne!(host(&a), host(&b), "pseudonyms must be keyed per run");
}
