//! Differential test: our decode against `lspci -vvv` on the same trees.
//!
//! For every device of every fixture (generated and lab-captured), the port
//! type, link capability and status (speed, width) and the ACS capability
//! and control bits must agree with what pciutils decodes from the same
//! config bytes. Two independent decoders reading the same bytes: when they
//! disagree, one of them is wrong.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::Value;

/// What we compare, per device.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    port_type: Option<String>,
    link_cap: Option<(String, u32)>,
    link_sta: Option<(String, u32)>,
    acs_cap: Option<u16>,
    acs_ctl: Option<u16>,
}

const ACS_NAMES: [&str; 7] = [
    "SrcValid",
    "TransBlk",
    "ReqRedir",
    "CmpltRedir",
    "UpstreamFwd",
    "EgressCtrl",
    "DirectTrans",
];

fn acs_bits(line: &str) -> Option<u16> {
    let mut bits = 0;
    for (i, name) in ACS_NAMES.iter().enumerate() {
        if line.contains(&format!("{name}+")) {
            bits |= 1 << i;
        } else if !line.contains(&format!("{name}-")) {
            return None;
        }
    }
    Some(bits)
}

/// `Speed 16GT/s, Width x16` → ("16", 16). lspci prints `2.5GT/s`, `8GT/s`.
fn speed_width(line: &str) -> Option<(String, u32)> {
    let token = line.split("Speed ").nth(1)?.split([',', ' ']).next()?;
    let speed = token.trim_end_matches("GT/s").to_string();
    let width = line
        .split("Width x")
        .nth(1)?
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()?;
    Some((speed, width))
}

fn lspci_port_type(desc: &str) -> Option<&'static str> {
    // "Express (v2) Root Port (Slot+), MSI 00" — longest names first.
    [
        ("Root Complex Integrated Endpoint", "rc_integrated_endpoint"),
        ("Root Complex Event Collector", "rc_event_collector"),
        ("PCI-Express to PCI/PCI-X Bridge", "pcie_to_pci_bridge"),
        ("PCI/PCI-X to PCI-Express Bridge", "pci_to_pcie_bridge"),
        ("Legacy Endpoint", "legacy_endpoint"),
        ("Root Port", "root_port"),
        ("Upstream Port", "upstream_port"),
        ("Downstream Port", "downstream_port"),
        ("Endpoint", "endpoint"),
    ]
    .iter()
    .find(|(n, _)| desc.contains(n))
    .map(|&(_, t)| t)
}

fn parse_lspci(text: &str) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines().filter(|l| !l.starts_with("lspci:"));
        let Some(head) = lines.next() else { continue };
        let Some(bdf) = head.split_whitespace().next() else {
            continue;
        };
        if bdf.parse::<p2pdoctor::pci::Bdf>().is_err() {
            continue;
        }
        let mut seen = Seen::default();
        for line in lines {
            let t = line.trim();
            if t.starts_with("Capabilities:") && t.contains("] Express") {
                seen.port_type = lspci_port_type(t).map(str::to_string);
            } else if let Some(rest) = t.strip_prefix("LnkCap:") {
                seen.link_cap = speed_width(rest);
            } else if let Some(rest) = t.strip_prefix("LnkSta:") {
                seen.link_sta = speed_width(rest);
            } else if let Some(rest) = t.strip_prefix("ACSCap:") {
                seen.acs_cap = acs_bits(rest);
            } else if let Some(rest) = t.strip_prefix("ACSCtl:") {
                seen.acs_ctl = acs_bits(rest);
            }
        }
        out.insert(bdf.to_string(), seen);
    }
    out
}

fn gts_text(v: &Value) -> Option<String> {
    let f = v.as_f64()?;
    Some(if f.fract() == 0.0 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    })
}

fn ours(doc: &Value) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for d in doc["devices"].as_array().unwrap() {
        let link = &d["link"];
        let from_config = link["source"] == "config";
        let pair = |s: &str, w: &str| -> Option<(String, u32)> {
            from_config.then(|| {
                (
                    gts_text(&link[s]).unwrap_or_else(|| "unknown".into()),
                    link[w].as_u64().unwrap_or(0) as u32,
                )
            })
        };
        out.insert(
            d["bdf"].as_str().unwrap().to_string(),
            Seen {
                port_type: d["port_type"].as_str().map(str::to_string),
                link_cap: pair("max_speed_gts", "max_width"),
                link_sta: pair("speed_gts", "width"),
                acs_cap: d["acs"]["cap"].as_u64().map(|v| v as u16 & 0x7f),
                acs_ctl: d["acs"]["ctrl"].as_u64().map(|v| v as u16 & 0x7f),
            },
        );
    }
    out
}

fn compare(name: &str, root: &Path) -> usize {
    let sysfs = root.join("sys/bus/pci");
    let out = std::process::Command::new("lspci")
        .args(["-D", "-vvv", "-A", "linux-sysfs", "-O"])
        .arg(format!("sysfs.path={}", sysfs.display()))
        .output()
        .unwrap();
    let theirs = parse_lspci(&String::from_utf8_lossy(&out.stdout));
    let ours = ours(&topo_json(root));
    assert!(!ours.is_empty(), "{name}: we saw no devices");
    let mut compared = 0;
    for (bdf, mine) in &ours {
        let Some(lspci) = theirs.get(bdf) else {
            panic!("{name}: lspci does not list {bdf}");
        };
        assert_eq!(
            mine, lspci,
            "{name} {bdf}: p2pdoctor (left) and lspci (right) disagree"
        );
        compared += 1;
    }
    compared
}

#[test]
fn decode_agrees_with_lspci_on_every_fixture() {
    if !have_tool("lspci") {
        return;
    }
    let mut total = 0;
    // `hostile` is built to break readers: lspci gives up on it entirely
    // (see the next test), so there is nothing to compare against.
    for name in spec_names().into_iter().filter(|n| n != "hostile") {
        let built = build(&name);
        total += compare(&name, &built.root());
    }
    for (name, archive) in lab_archives() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::open(&archive).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        tar.unpack(dir.path()).unwrap();
        total += compare(&name, dir.path());
    }
    eprintln!("compared {total} devices with lspci");
    assert!(total > 50, "only {total} devices compared");
}

/// Lab snapshots (tests/fixtures/lab/*.tar.gz).
fn lab_archives() -> Vec<(String, std::path::PathBuf)> {
    let dir = fixtures_dir().join("lab");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Where lspci stops at the first bad entry, p2pdoctor reads what it can
/// and names what it skipped.
#[test]
fn hostile_tree_stops_lspci_but_not_p2pdoctor() {
    if !have_tool("lspci") {
        return;
    }
    let built = build("hostile");
    let root = built.root();
    let lspci = std::process::Command::new("lspci")
        .args(["-D", "-vvv", "-A", "linux-sysfs", "-O"])
        .arg(format!("sysfs.path={}", root.join("sys/bus/pci").display()))
        .output()
        .unwrap();
    assert!(
        !lspci.status.success(),
        "lspci unexpectedly read the hostile tree"
    );
    let doc = topo_json(&root);
    assert!(!doc["devices"].as_array().unwrap().is_empty());
    assert!(!doc["limitations"].as_array().unwrap().is_empty());
}

#[test]
fn lspci_parser_reads_acs_and_links() {
    let text = "0000:00:03.0 PCI bridge: Red Hat, Inc. QEMU PCIe Root port\n\
\tCapabilities: [54] Express (v2) Root Port (Slot+), MSI 00\n\
\t\tLnkCap:\tPort #0, Speed 16GT/s, Width x32, ASPM L0s, Exit Latency L0s <64ns\n\
\t\tLnkSta:\tSpeed 2.5GT/s (downgraded), Width x1 (downgraded)\n\
\tCapabilities: [148 v1] Access Control Services\n\
\t\tACSCap:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-\n\
\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-\n";
    let m = parse_lspci(text);
    let s = &m["0000:00:03.0"];
    assert_eq!(s.port_type.as_deref(), Some("root_port"));
    assert_eq!(s.link_cap, Some(("16".into(), 32)));
    assert_eq!(s.link_sta, Some(("2.5".into(), 1)));
    assert_eq!(s.acs_ctl, Some(0x1d));
}
