//! The prediction against the real kernel: lab snapshots
//! (tests/fixtures/lab/*.tar.gz, captured under QEMU after real P2P copies,
//! see docs/ARCHITECTURE.md) carry the kernel log, and in it the kernel's own verdict
//! lines for every pair it refused or detoured. Each of those lines must be
//! one p2pdoctor predicted for that pair, word for word, and for such a pair
//! p2pdoctor must predict no line the kernel did not print.

mod common;

use std::path::PathBuf;

use p2pdoctor::diagnose::{self, Diagnosis, MapType, Options};
use p2pdoctor::pci::Bdf;
use p2pdoctor::root::SystemRoot;
use p2pdoctor::scan::{self, ScanOptions};
use p2pdoctor::topology::Tree;

fn lab_snapshots() -> Vec<PathBuf> {
    let dir = common::fixtures_dir().join("lab");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn analyse(path: &std::path::Path) -> (Diagnosis, Vec<String>) {
    let root = SystemRoot::open(path).unwrap();
    let tree = Tree::build(scan::scan(
        &root,
        &ScanOptions {
            no_names: true,
            ..Default::default()
        },
    ));
    // `[   13.449686] nvme 0000:01:00.1: ...` -> the message without the time.
    let log = tree
        .kernel_log
        .iter()
        .map(|l| match l.split_once("] ") {
            Some((t, rest)) if t.starts_with('[') => rest.to_string(),
            _ => l.clone(),
        })
        .collect();
    (diagnose::diagnose(&tree, &Options::default()), log)
}

/// The (provider, client) a kernel verdict line is about.
fn pair_of(line: &str) -> Option<(Bdf, Bdf)> {
    if !(line.contains("peer-to-peer DMA as the client and provider (")
        || line.contains("ACS redirect is set between the client and provider ("))
    {
        return None;
    }
    let client = line
        .split_whitespace()
        .nth(1)?
        .trim_end_matches(':')
        .parse()
        .ok()?;
    let provider = line.rsplit_once('(')?.1.split_once(')')?.0.parse().ok()?;
    Some((provider, client))
}

#[test]
fn predictions_match_the_kernels_own_verdicts() {
    let snaps = lab_snapshots();
    if snaps.is_empty() {
        eprintln!("SKIPPED: no lab snapshots in tests/fixtures/lab");
        return;
    }
    let mut compared = 0;
    for path in &snaps {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (d, log) = analyse(path);
        let mut pairs_in_log: Vec<(Bdf, Bdf)> = log.iter().filter_map(|l| pair_of(l)).collect();
        pairs_in_log.dedup();
        for (provider, client) in pairs_in_log {
            let p = d
                .pairs
                .iter()
                .find(|p| p.provider() == provider && p.client() == client)
                .unwrap_or_else(|| panic!("{name}: the kernel decided {provider} -> {client}, p2pdoctor has no such pair"));
            let predicted = &p.kernel_messages();
            assert!(
                !predicted.is_empty(),
                "{name}: {provider} -> {client}: kernel logged a verdict, p2pdoctor predicted {:?} silently",
                p.verdict().map_type
            );
            // Every predicted line is in the log, in order.
            let mut at = 0;
            for m in predicted {
                let found = log[at..].iter().position(|l| l == m);
                assert!(
                    found.is_some(),
                    "{name}: predicted but not logged after line {at}:\n  {m}\nlog:\n  {}",
                    log.join("\n  ")
                );
                at += found.unwrap() + 1;
            }
            // Every verdict line the kernel logged about the pair is predicted.
            for l in log.iter().filter(|l| {
                pair_of(l) == Some((provider, client)) || l.contains("to disable ACS redirect")
            }) {
                if l.contains("to disable ACS redirect") && !l.contains(&format!(" {client}: ")) {
                    continue;
                }
                assert!(
                    predicted.contains(l),
                    "{name}: logged but not predicted:\n  {l}\npredicted:\n  {}",
                    predicted.join("\n  ")
                );
            }
            compared += 1;
        }
        // A refused NVMe pair shows in the log only if the lab tried it;
        // what is in the log must never contradict an allowed prediction.
        for p in &d.pairs {
            if p.verdict().map_type == MapType::BusAddr {
                assert!(
                    !log.iter()
                        .any(|l| pair_of(l) == Some((p.provider(), p.client()))),
                    "{name}: predicted bus address for {} -> {}, the kernel logged a verdict",
                    p.provider(),
                    p.client()
                );
            }
        }
    }
    assert!(compared >= 3, "only {compared} kernel verdicts compared");
}

/// What the lab showed in each scenario (docs/ARCHITECTURE.md, lab/README.md), held to the prediction.
#[test]
fn scenarios_as_lab_md_describes_them() {
    for path in lab_snapshots() {
        let stem = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".tar.gz", "");
        let (d, _) = analyse(&path);
        let pair = |prov: &str, client: &str| {
            d.pairs
                .iter()
                .find(|p| {
                    p.provider() == prov.parse().unwrap() && p.client() == client.parse().unwrap()
                })
                .unwrap_or_else(|| panic!("{stem}: no pair {prov} -> {client}"))
        };
        let has = |rule: &str| d.findings.iter().any(|f| f.rule == rule);
        match stem.as_str() {
            "01-switch" | "04-switch-iommu" | "11-switch-iommu-pt" => {
                let p = pair("0000:03:00.0", "0000:04:00.0");
                assert_eq!(
                    (p.verdict().map_type, p.verdict().distance),
                    (MapType::BusAddr, 4),
                    "{stem}"
                );
            }
            "02-root-ports" => {
                assert_eq!(
                    pair("0000:01:00.0", "0000:02:00.0").verdict().map_type,
                    MapType::NotSupported
                );
                assert!(has("P2P401"));
            }
            "03-multifunction-iommu" => {
                let p = pair("0000:01:00.0", "0000:01:00.1");
                assert_eq!(p.verdict().map_type, MapType::NotSupported);
                assert_eq!(
                    p.verdict().acs_redirect,
                    vec!["0000:00:03.0".parse::<Bdf>().unwrap()]
                );
                let f = d.findings.iter().find(|f| f.rule == "P2P301").unwrap();
                assert!(
                    f.fix
                        .as_ref()
                        .unwrap()
                        .to_string()
                        .contains("pci=disable_acs_redir=0000:00:03.0")
                );
            }
            "05-epyc-root-ports" => {
                let p = pair("0000:01:00.0", "0000:02:00.0");
                assert_eq!(p.verdict().map_type, MapType::ThruHostBridge);
                assert!(p.verdict().cpu_rule);
            }
            "06-root-port-no-acs" | "07-disable-acs-redir" => {
                let p = pair("0000:01:00.0", "0000:01:00.1");
                assert_eq!(
                    (p.verdict().map_type, p.verdict().distance),
                    (MapType::BusAddr, 2),
                    "{stem}"
                );
                if stem.starts_with("07") {
                    assert_eq!(
                        d.header.acs_parameters.disable_acs_redir.as_deref(),
                        Some("0000:00:03.0")
                    );
                    assert!(!has("P2P305"), "the parameter did its job");
                }
            }
            "08-host-bridges" => {
                for c in ["0000:01:00.0", "0000:41:00.0"] {
                    assert_eq!(
                        pair("0000:21:00.0", c).verdict().map_type,
                        MapType::NotSupported
                    );
                }
            }
            "09-cascaded-switches" => {
                assert!(
                    d.pairs
                        .iter()
                        .filter(|p| p.verdict().map_type == MapType::BusAddr)
                        .count()
                        >= 2
                );
            }
            "10-no-cmb" => assert!(has("P2P201")),
            _ => {}
        }
    }
}

/// Path classes with NVML's meanings (what `nvidia-smi topo -m` prints):
/// two devices below one switch are PIX, below cascaded switches PXB; the
/// effective class is PHB where the kernel sends the pair through the root
/// complex, whatever the wiring.
#[test]
fn path_classes_follow_nvml_and_the_effective_class_follows_the_kernel() {
    use p2pdoctor::topology::PathClass::{self, *};
    let cases: &[(&str, &str, &str, PathClass, PathClass)] = &[
        ("01-switch", "0000:03:00.0", "0000:04:00.0", Pix, Pix),
        (
            "09-cascaded-switches",
            "0000:05:00.0",
            "0000:06:00.0",
            Pix,
            Pix,
        ),
        (
            "09-cascaded-switches",
            "0000:05:00.0",
            "0000:07:00.0",
            Pxb,
            Pxb,
        ),
        // Two functions of one device below a root port with ACS redirect.
        (
            "03-multifunction-iommu",
            "0000:01:00.0",
            "0000:01:00.1",
            Pix,
            Phb,
        ),
        ("02-root-ports", "0000:01:00.0", "0000:02:00.0", Phb, Phb),
    ];
    for (stem, prov, client, physical, effective) in cases {
        let path = common::fixtures_dir()
            .join("lab")
            .join(format!("{stem}.tar.gz"));
        let (d, _) = analyse(&path);
        let p = d
            .pairs
            .iter()
            .find(|p| {
                p.provider() == prov.parse().unwrap() && p.client() == client.parse().unwrap()
            })
            .unwrap_or_else(|| panic!("{stem}: no pair {prov} -> {client}"));
        assert_eq!(
            (p.path_class(), p.effective_path_class()),
            (*physical, *effective),
            "{stem}: {prov} -> {client}"
        );
    }
}
