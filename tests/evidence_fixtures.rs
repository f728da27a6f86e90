//! Real dumps of real machines, as pciutils keeps them for its own tests
//! (`lspci -xxxx` format, the input of `lspci -F`). They are third-party
//! data, so the project does not commit them: the test reads them from
//! $P2PDOCTOR_PCIUTILS_DUMPS, else from ../shared/evidence/pciutils beside
//! the checkout (tests/fixtures/evidence/README.md says which files and
//! where they come from), and says so and skips when neither is there.
//! p2pdoctor reads each as `--root FILE`, and what it makes of
//! the bytes agrees with what real lspci makes of the same file (`lspci -F
//! FILE -tv` for the nesting, `lspci -F FILE -vvv` fed back in for the
//! decoded registers). Also `--root -` and the errors of evidence input.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn dumps() -> Vec<PathBuf> {
    let dir = std::env::var_os("P2PDOCTOR_PCIUTILS_DUMPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/evidence/pciutils")
        });
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "no pciutils dumps at {} (P2PDOCTOR_PCIUTILS_DUMPS): skipping the real-machine dump checks",
            dir.display()
        );
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".md"))
        .collect();
    v.sort();
    v
}

fn topo(file: &Path) -> Value {
    let out = p2pdoctor()
        .arg("--root")
        .arg(file)
        .args(["topo", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn by_bdf(doc: &Value) -> BTreeMap<String, Value> {
    doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["bdf"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

/// Known differences with lspci, each with its reason.
const KNOWN: &[(&str, &str, &str)] = &[(
    "tree-fujitsu-p8010",
    "0000:1d:00.0",
    "below a CardBus bridge (header type 2, 1c:03.0): nest_by_bus_ranges reads type 1 bus numbers only and places it at the nearest type 1 bridge with a gap note",
)];

#[test]
fn pciutils_dumps_read_like_lspci_reads_them() {
    let mut functions = 0;
    for dump in dumps() {
        let name = dump.file_name().unwrap().to_string_lossy().into_owned();
        let ours = topo(&dump);
        common::schema::assert_valid("topo", &ours);
        let text = std::fs::read_to_string(&dump).unwrap();
        let headers = text
            .lines()
            .filter(|l| {
                l.split(' ')
                    .next()
                    .is_some_and(|a| a.parse::<p2pdoctor::pci::Bdf>().is_ok())
            })
            .count();
        let devs = by_bdf(&ours);
        assert_eq!(devs.len(), headers, "{name}: one device per dump");
        assert!(devs.values().all(|d| d["source"] == "lspci_hex"), "{name}");
        functions += devs.len();
        if !have_tool("lspci") {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        for (args, what) in [(&["-tv"][..], "tree"), (&["-vvv"][..], "text")] {
            let out = std::process::Command::new("lspci")
                .arg("-F")
                .arg(&dump)
                .args(args)
                .output()
                .unwrap();
            let file = dir.path().join(what);
            std::fs::write(&file, &out.stdout).unwrap();
            let theirs = by_bdf(&topo(&file));
            for (bdf, d) in &devs {
                if KNOWN.iter().any(|(n, b, _)| *n == name && b == bdf) {
                    continue;
                }
                let t = theirs
                    .get(bdf)
                    .unwrap_or_else(|| panic!("{name} [{what}]: {bdf} missing"));
                assert_eq!(d["parent"], t["parent"], "{name} [{what}] {bdf}: parent");
                assert_eq!(
                    d["host_bridge"], t["host_bridge"],
                    "{name} [{what}] {bdf}: host bridge"
                );
                if what == "text" {
                    for k in ["port_type", "role", "max_payload", "relaxed_ordering"] {
                        assert_eq!(d[k], t[k], "{name} [{what}] {bdf}: {k}");
                    }
                    for k in ["cap", "ctrl"] {
                        assert_eq!(d["acs"][k], t["acs"][k], "{name} [{what}] {bdf}: acs {k}");
                    }
                    if d["link"]["source"] == "config" {
                        for k in ["speed_gts", "width", "max_speed_gts", "max_width"] {
                            assert_eq!(
                                d["link"][k], t["link"][k],
                                "{name} [{what}] {bdf}: link {k}"
                            );
                        }
                    }
                }
            }
        }
    }
    let dumps = dumps().len();
    assert!(
        dumps == 0 || functions > 100,
        "{functions} functions in {dumps} dumps"
    );
}

#[test]
fn gpu_server_paste_is_analysed() {
    // `lspci -tvnn` and `sudo lspci -vvv` of a two-socket GPU server with
    // a ticket's prose, prompts and fences around them (see README.md).
    let file = fixtures_dir().join("evidence/gpu_server_paste.txt");
    let out = p2pdoctor()
        .arg("--root")
        .arg(&file)
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    common::schema::assert_valid("check", &doc);
    assert_eq!(doc["all_pairs_implied"], true);
    let doc = common::expand_pairs(&doc);
    let pairs = doc["pairs"].as_array().unwrap();
    assert!(!pairs.is_empty());
    // Two GPUs below one switch whose downstream ports have ACS redirect
    // on (their ACSCtl lines are in the -vvv text): through the host
    // bridge, with the two ports in the kernel's order, and certain, since
    // the paste carries uname -r and lscpu too.
    let p = pairs
        .iter()
        .find(|p| p["provider"] == "0000:43:00.0" && p["client"] == "0000:44:00.0")
        .expect("GPU pair below the switch");
    assert_eq!(p["map_type"], "thru_host_bridge");
    assert_eq!(p["distance"], 4);
    assert_eq!(
        p["acs_redirect"],
        serde_json::json!(["0000:42:00.0", "0000:42:01.0"])
    );
    assert_eq!(p["certain"], true, "{:?}", p["unknown"]);
    assert_eq!(p["path_class"], "PIX");
    assert_eq!(p["effective_path_class"], "PHB");
    assert_eq!(doc["host"]["kernel_release"], "6.8.0-45-generic");
    assert!(
        doc["host"]["cpu"]
            .as_str()
            .unwrap()
            .contains("GenuineIntel")
    );
    assert_eq!(doc["host"]["iommu"]["mode"], "passthrough");
    // The pasted `nvidia-smi topo -m` is compared with p2pdoctor's
    // classes, as on the machine: PIX for the four GPUs below the switch.
    let vt = &doc["vendor_topology"];
    assert!(
        !vt.is_null(),
        "the nvidia-smi matrix in the paste was not read"
    );
    assert!(vt.to_string().contains("0000:46:00.0"), "{vt}");
    // Every pair keeps its path class.
    assert!(pairs.iter().all(|p| p.get("path_class").is_some()));
}

#[test]
fn stdin_pipe_reads_like_a_file() {
    let file = fixtures_dir().join("evidence/acs_switch_paste.txt");
    let text = std::fs::read_to_string(&file).unwrap();
    let out = p2pdoctor()
        .args(["--root", "-", "topo", "--format", "json"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let piped: Value = serde_json::from_slice(&out.stdout).unwrap();
    let filed = topo(&file);
    assert_eq!(piped["devices"], filed["devices"]);
    assert_eq!(piped["source"], "the evidence file standard input");
}

#[test]
fn not_evidence_exits_3_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (content, needle) in [
        (
            &b"Dear support,\nmy GPUs are slow.\n"[..],
            "\"Dear support,\"",
        ),
        (&b""[..], "empty"),
        (
            &[0u8, 159, 146, 150, 7, 8, 200, 201, 1, 2, 3, 4, 5, 6][..],
            "binary data",
        ),
    ] {
        let file = dir.path().join("ticket.txt");
        std::fs::write(&file, content).unwrap();
        let out = run(&file, &["check"]);
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(err.contains("lspci"), "{err}");
    }
}

#[test]
fn a_directory_of_command_output_reads_like_the_file() {
    let file = fixtures_dir().join("evidence/acs_switch_paste.txt");
    let text = std::fs::read_to_string(&file).unwrap();
    let filed = topo(&file);
    // As people save it: lspci.txt beside other files.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lspci.txt"), &text).unwrap();
    std::fs::write(dir.path().join("notes.md"), "the GPUs are slow\n").unwrap();
    let saved = topo(dir.path());
    assert_eq!(saved["devices"], filed["devices"]);
    // As sosreport lays it out.
    let sos = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(sos.path().join("sos_commands/pci")).unwrap();
    std::fs::create_dir_all(sos.path().join("sos_commands/kernel")).unwrap();
    std::fs::write(sos.path().join("sos_commands/pci/lspci_-nnvv"), &text).unwrap();
    std::fs::write(
        sos.path().join("sos_commands/kernel/uname_-a"),
        "Linux gpu-node-07 6.8.0-45-generic #45-Ubuntu SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\n",
    )
    .unwrap();
    let sosed = topo(sos.path());
    assert_eq!(sosed["devices"], filed["devices"]);
    assert_eq!(sosed["host"]["kernel_release"], "6.8.0-45-generic");
    assert_eq!(sosed["host"]["hostname"], "gpu-node-07");
    // A directory with neither sysfs nor lspci output is refused, naming
    // both.
    let empty = tempfile::tempdir().unwrap();
    let out = run(empty.path(), &["topo", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sys/") && err.contains("lspci"), "{err}");
}
