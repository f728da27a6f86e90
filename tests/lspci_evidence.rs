//! The differential round trip for evidence files: for every fixture spec
//! and lab snapshot, real `lspci` (pciutils, reading the tree through
//! `-A linux-sysfs`) prints `-tv`, `-vvv`, `-vvvnn -D`, `-xxxx`,
//! `-vvv -xxxx` and a paste of several with prompts and fences; each is
//! fed back to p2pdoctor as `--root FILE`. Every pair the tree itself
//! predicts must be there; where the evidence version is certain, its map
//! type, distance, ACS list and path class must equal the tree's; and a
//! fact the text cannot carry must read unknown, never as a value.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// (provider, client) → the pair object.
fn pairs(doc: &Value) -> BTreeMap<(String, String), Value> {
    expand_pairs(doc)["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (
                    p["provider"].as_str().unwrap().to_string(),
                    p["client"].as_str().unwrap().to_string(),
                ),
                p.clone(),
            )
        })
        .collect()
}

fn devices(doc: &Value) -> BTreeMap<String, Value> {
    doc["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["bdf"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

fn lspci(root: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("lspci")
        .args(["-A", "linux-sysfs", "-O"])
        .arg(format!("sysfs.path={}", root.join("sys/bus/pci").display()))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What each kind of input carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Carries {
    /// The tree's shape only (`-tv`).
    Shape,
    /// One line per function, no nesting, no bus numbers (`lspci -nn`).
    Listing,
    /// Decoded registers (`-vvv`).
    Text,
    /// Capability names without their registers (`-v`).
    Names,
    /// The config bytes themselves (`-xxxx`).
    Bytes,
}

struct Variant {
    name: &'static str,
    text: String,
    carries: Carries,
}

fn variants(root: &Path) -> Vec<Variant> {
    let tv = lspci(root, &["-tv"]);
    let tvnn = lspci(root, &["-tvnn"]);
    let vvv = lspci(root, &["-vvv"]);
    let vvvnn = lspci(root, &["-vvvnn", "-D"]);
    let hex = lspci(root, &["-xxxx"]);
    let both = lspci(root, &["-vvv", "-xxxx"]);
    // A ticket paste: prose, prompts, a sudo prompt, fences, CRLF lines,
    // other commands between the sections.
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    let host = format!(
        "$ uname -r\n{}\n$ cat /proc/cmdline\n{}\n$ cat /proc/cpuinfo\n{}\n",
        read("proc/sys/kernel/osrelease").trim(),
        read("proc/cmdline").trim(),
        read("proc/cpuinfo").trim()
    );
    let paste = format!(
        "Hi, P2P between the GPUs is slow on this box. Output below.\r\n\r\n```\r\n{host}$ lspci -tvnn\r\n{}```\r\n\r\nroot@box:~# nvidia-smi topo -m\r\n\tGPU0\tGPU1\r\nGPU0\t X \tPIX\r\n\r\n```text\r\n$ sudo lspci -vvv\r\n[sudo] password for me: \r\n{}```\r\nand the hex:\r\n\r\n    # lspci -xxxx\r\n{}\r\nthanks!\r\n",
        tvnn.replace('\n', "\r\n"),
        vvv.replace('\n', "\r\n"),
        hex
    );
    let bare_paste = paste.replacen(&host, "", 1);
    vec![
        Variant {
            name: "-tv",
            text: tv,
            carries: Carries::Shape,
        },
        Variant {
            name: "-nn",
            text: lspci(root, &["-nn"]),
            carries: Carries::Listing,
        },
        Variant {
            name: "-v",
            text: lspci(root, &["-v"]),
            carries: Carries::Names,
        },
        Variant {
            name: "-vv",
            text: lspci(root, &["-vv"]),
            carries: Carries::Text,
        },
        Variant {
            name: "-vvv",
            text: vvv,
            carries: Carries::Text,
        },
        Variant {
            name: "-vvvnn -D",
            text: vvvnn,
            carries: Carries::Text,
        },
        Variant {
            name: "-xxxx",
            text: hex,
            carries: Carries::Bytes,
        },
        Variant {
            name: "-vvv -xxxx",
            text: both,
            carries: Carries::Bytes,
        },
        Variant {
            name: "paste",
            text: bare_paste,
            carries: Carries::Bytes,
        },
        Variant {
            name: "paste with host",
            text: paste,
            carries: Carries::Bytes,
        },
    ]
}

/// Compares one variant with the tree's own answer; returns pairs checked.
fn compare(name: &str, root: &Path, dir: &Path, v: &Variant) -> (usize, usize) {
    let truth_check = serde_json::from_str::<Value>(&stdout_or_warn(
        root,
        &["check", "--all-pairs", "--format", "json"],
    ))
    .unwrap();
    let truth_topo = topo_json(root);
    let file = dir.join(format!("{}.txt", v.name.replace([' ', '-'], "_")));
    std::fs::write(&file, &v.text).unwrap();
    let check = json_on(&file, &["check", "--format", "json"]);
    let topo = json_on(&file, &["topo", "--format", "json"]);
    let what = format!("{name} [{}]", v.name);
    assert_eq!(check["all_pairs_implied"], true, "{what}");
    common::schema::assert_valid("topo", &topo);
    common::schema::assert_valid("check", &check);

    // Topology: every device is there, below the same parent and host
    // bridge; what the input carries equals the tree's, the rest is null.
    let (theirs, ours) = (devices(&truth_topo), devices(&topo));
    for (bdf, t) in &theirs {
        let Some(o) = ours.get(bdf) else {
            panic!("{what}: {bdf} is missing")
        };
        if v.carries == Carries::Listing {
            // No nesting in the input: where it sits is a guess, said so.
            assert_eq!(o["acs"], Value::Null, "{what} {bdf}");
            if t["role"].as_str().is_some_and(|r| {
                r != "host_bridge_device" && (r.contains("port") || r.contains("bridge"))
            }) {
                assert!(
                    o["unknown_registers"]
                        .as_array()
                        .unwrap()
                        .contains(&"bus_numbers".into()),
                    "{what} {bdf}: a bridge's bus numbers are not in the listing"
                );
            }
            continue;
        }
        assert_eq!(o["parent"], t["parent"], "{what} {bdf}: parent");
        assert_eq!(
            o["host_bridge"], t["host_bridge"],
            "{what} {bdf}: host bridge"
        );
        match v.carries {
            Carries::Listing => unreachable!(),
            Carries::Shape => {
                assert_eq!(o["acs"], Value::Null, "{what} {bdf}: ACS must be unknown");
                assert_eq!(
                    o["port_type"],
                    Value::Null,
                    "{what} {bdf}: port type must be unknown"
                );
                assert_eq!(o["link"], Value::Null, "{what} {bdf}: link must be unknown");
                assert_eq!(
                    o["bus_master"],
                    Value::Null,
                    "{what} {bdf}: bus master must be unknown"
                );
            }
            Carries::Names => {
                // The capability list is there (port types, roles), its
                // registers are not: unknown, never zero.
                if t["config_bytes"].as_u64() > Some(64) {
                    assert_eq!(o["port_type"], t["port_type"], "{what} {bdf}: port type");
                    assert_eq!(o["role"], t["role"], "{what} {bdf}: role");
                    if !t["acs"].is_null() {
                        assert_eq!(o["acs"], Value::Null, "{what} {bdf}: ACSCtl is not in -v");
                    }
                    if t["link"]["source"] == "config" {
                        assert!(
                            o["link"].is_null() || o["link"]["source"] != "config",
                            "{what} {bdf}: LnkSta is not in -v"
                        );
                    }
                    if !t["max_payload"].is_null() {
                        assert_eq!(
                            o["max_payload"],
                            Value::Null,
                            "{what} {bdf}: DevCtl is not in -v"
                        );
                    }
                }
            }
            Carries::Text | Carries::Bytes => {
                assert_eq!(o["bus_master"], t["bus_master"], "{what} {bdf}: bus master");
                // A VF's PF, from the PF's SR-IOV capability as the kernel
                // finds it.
                if t["config_bytes"].as_u64() > Some(256) {
                    assert_eq!(o["physfn"], t["physfn"], "{what} {bdf}: physfn");
                }
                // Subsystem IDs: in the bytes, or in the text with -nn;
                // unknown (null) in the text without -nn.
                if v.carries == Carries::Bytes || v.name.contains("nn") {
                    assert_eq!(
                        o["subsystem_id"], t["subsystem_id"],
                        "{what} {bdf}: subsystem"
                    );
                } else {
                    assert_eq!(
                        o["subsystem_id"],
                        Value::Null,
                        "{what} {bdf}: subsystem unknown"
                    );
                }
                // Without root lspci reads 64 bytes, and so do we.
                if t["config_bytes"] == 64 {
                    assert_eq!(o["config_bytes"], 64, "{what} {bdf}: config bytes");
                }
                // lspci prints capabilities only from config it could read:
                // a tree captured without root shows `<access denied>`.
                if t["config_bytes"].as_u64() > Some(64) {
                    for k in ["port_type", "role", "max_payload", "relaxed_ordering"] {
                        assert_eq!(o[k], t[k], "{what} {bdf}: {k}");
                    }
                    // The Egress Control Vector size is not in lspci's text.
                    for k in ["cap", "ctrl", "redirects"] {
                        assert_eq!(o["acs"][k], t["acs"][k], "{what} {bdf}: acs {k}");
                    }
                    if t["link"]["source"] == "config" {
                        for k in ["speed_gts", "width", "max_speed_gts", "max_width"] {
                            assert_eq!(o["link"][k], t["link"][k], "{what} {bdf}: link {k}");
                        }
                    }
                } else {
                    assert_eq!(o["acs"], Value::Null, "{what} {bdf}: ACS must be unknown");
                }
                if v.carries == Carries::Bytes {
                    assert_eq!(
                        o["config_bytes"], t["config_bytes"],
                        "{what} {bdf}: config bytes"
                    );
                    // A VF's ID registers read all ones: its IDs come
                    // from its PF's SR-IOV capability, as in the kernel.
                    assert_eq!(o["vendor_id"], t["vendor_id"], "{what} {bdf}: vendor");
                    assert_eq!(o["device_id"], t["device_id"], "{what} {bdf}: device");
                }
            }
        }
    }

    // Pairs: all there; where certain, as the tree says.
    let (theirs, ours) = (pairs(&truth_check), pairs(&check));
    let (mut certain, mut checked) = (0, 0);
    for (key, t) in &theirs {
        let Some(o) = ours.get(key) else {
            panic!("{what}: pair {key:?} is missing")
        };
        checked += 1;
        assert!(o.get("path_class").is_some(), "{what} {key:?}: path_class");
        // A Xen PV/PVH dom0 refuses every mapping (/sys/hypervisor, which
        // no lspci output carries; lscpu would show it): the evidence
        // cannot know, and says so in a limitation.
        if !t["blocked_by"].is_null() {
            assert!(
                check["limitations"].to_string().contains("hypervisor"),
                "{what}: the hypervisor gap is not said"
            );
            continue;
        }
        if v.carries == Carries::Listing
            && truth_topo["switches"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        {
            assert_eq!(o["certain"], false, "{what} {key:?}: placement is a guess");
        }
        if o["certain"] == true {
            certain += 1;
            for k in ["map_type", "distance", "acs_redirect", "path_class"] {
                assert_eq!(o[k], t[k], "{what} {key:?}: {k} (evidence is certain)");
            }
        } else {
            assert!(
                !o["unknown"].as_array().unwrap().is_empty(),
                "{what} {key:?}: uncertain without saying why"
            );
        }
        // A paste with uname -r, /proc/cmdline and /proc/cpuinfo carries
        // every fact the decision reads: as certain as the tree itself.
        if v.name == "paste with host" && theirs_all_read(&truth_topo) {
            for k in [
                "map_type",
                "distance",
                "acs_redirect",
                "path_class",
                "certain",
            ] {
                assert_eq!(o[k], t[k], "{what} {key:?}: {k} (full paste)");
            }
        }
        // Hardware alone decides a switch path without ACS redirect: a
        // full reading must keep that certain.
        if matches!(v.carries, Carries::Text | Carries::Bytes)
            && t["map_type"] == "bus_addr"
            && t["certain"] == true
            && theirs_all_read(&truth_topo)
        {
            assert_eq!(
                o["certain"], true,
                "{what} {key:?}: bus_addr decided by hardware"
            );
            assert_eq!(o["map_type"], "bus_addr", "{what} {key:?}");
        }
    }
    (checked, certain)
}

/// Every function's config was read in full (the tree was captured as root).
fn theirs_all_read(topo: &Value) -> bool {
    topo["devices"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["config_bytes"].as_u64() > Some(64))
}

fn stdout_or_warn(root: &Path, args: &[&str]) -> String {
    let out = run(root, args);
    assert!(out.status.code().is_some_and(|c| c <= 2), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn lab_roots(dir: &Path) -> Vec<(String, PathBuf)> {
    let lab = fixtures_dir().join("lab");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&lab)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v.into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".tar.gz")
                .to_string();
            let to = dir.join(&name);
            let file = std::fs::File::open(&p).unwrap();
            tar::Archive::new(flate2::read::GzDecoder::new(file))
                .unpack(&to)
                .unwrap();
            (name, to)
        })
        .collect()
}

#[test]
fn lspci_output_gives_the_trees_answer() {
    if !have_tool("lspci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut built = Vec::new();
    let mut roots: Vec<(String, PathBuf)> = Vec::new();
    for name in spec_names().into_iter().filter(|n| n != "hostile") {
        let b = build(&name);
        roots.push((name, b.root()));
        built.push(b);
    }
    roots.extend(lab_roots(work.path()));
    let (mut checked, mut certain, mut runs) = (0, 0, 0);
    for (name, root) in &roots {
        let dir = work.path().join(format!("out-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        for v in variants(root) {
            let (c, s) = compare(name, root, &dir, &v);
            checked += c;
            certain += s;
            runs += 1;
        }
    }
    eprintln!("{runs} inputs, {checked} pairs compared, {certain} certain");
    assert!(certain > 100, "only {certain} certain pairs");
}

#[test]
fn stdin_gives_the_same_answer_as_the_file() {
    if !have_tool("lspci") {
        return;
    }
    let b = build("acs_switch");
    let text = lspci(&b.root(), &["-vvv", "-xxxx"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lspci.txt");
    std::fs::write(&file, &text).unwrap();
    let from_file = json_on(&file, &["check", "--format", "json"]);
    let out = p2pdoctor()
        .args(["--root", "-", "check", "--format", "json"])
        .write_stdin(text)
        .output()
        .unwrap();
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_file["pairs"], from_stdin["pairs"]);
    assert_eq!(from_file["findings"], from_stdin["findings"]);
}

#[test]
fn resizable_bar_from_the_text_finds_what_the_tree_finds() {
    if !have_tool("lspci") {
        return;
    }
    let b = build("rule_small_bar");
    let p2p804 = |doc: &Value| -> Vec<String> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "P2P804")
            // The device's name differs (lspci's pci.ids, the test's).
            .map(|f| {
                let m = f["message"].as_str().unwrap();
                format!("{} {}", &m[..12], m.split_once(" has ").map_or(m, |x| x.1))
            })
            .collect()
    };
    let truth: Value =
        serde_json::from_str(&stdout_or_warn(&b.root(), &["check", "--format", "json"])).unwrap();
    assert!(!p2p804(&truth).is_empty());
    let dir = tempfile::tempdir().unwrap();
    for args in [&["-vvv"][..], &["-xxxx"][..]] {
        let file = dir.path().join("lspci.txt");
        std::fs::write(&file, lspci(&b.root(), args)).unwrap();
        let ours = json_on(&file, &["check", "--format", "json"]);
        assert_eq!(p2p804(&ours), p2p804(&truth), "lspci {args:?}");
    }
}
