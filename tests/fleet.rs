//! `p2pdoctor fleet` over 50 generated snapshots (p2pdoctor_fixture::fleet:
//! two machine models, and variants with ACS cleared, a narrow link, a
//! missing NVMe, renumbered buses; every node with its own host name,
//! serials and root=UUID): the families, the outliers with exactly what
//! makes them differ, the table by node, the exit status. bench/fleet.sh
//! runs the same over 1,000 for time and memory.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use p2pdoctor_fixture::fleet::{Variant, fleet_node, node_name};
use serde_json::{Value, json};

const NODES: usize = 50;

/// The 50 snapshots, written once for all tests in this file.
fn fleet_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..NODES {
            let tree = tempfile::tempdir().unwrap();
            let root = tree.path().join("root");
            p2pdoctor_fixture::build(&fleet_node(i).unwrap(), &root).unwrap();
            let snap = p2pdoctor::snapshot::capture(
                p2pdoctor::root::SystemRoot::open(&root).unwrap(),
                false,
            )
            .unwrap();
            std::fs::write(
                dir.path().join(format!("{}.tar.gz", node_name(i))),
                &snap.archive,
            )
            .unwrap();
        }
        dir
    })
    .path()
}

fn fleet(args: &[&std::ffi::OsStr]) -> (Option<i32>, Value) {
    let out = p2pdoctor()
        .arg("fleet")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    schema::assert_valid("fleet", &doc);
    (out.status.code(), doc)
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// (class, subject, what, before, after) of an outlier's differences.
fn differences(o: &Value) -> Vec<(String, String, String, Value, Value)> {
    o["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["class"].as_str().unwrap().into(),
                c["subject"].as_str().unwrap().into(),
                c["what"].as_str().unwrap().into(),
                c["before"].clone(),
                c["after"].clone(),
            )
        })
        .collect()
}

#[test]
fn families_outliers_and_what_makes_each_differ() {
    let (code, doc) = fleet(&[fleet_dir().as_os_str()]);
    assert_eq!(code, Some(1), "outliers exit 1");
    assert_eq!(doc["nodes_total"], NODES);
    assert_eq!(doc["unreadable"], json!([]));
    let expect = |v: Variant| -> Vec<String> {
        (0..NODES)
            .filter(|&i| Variant::of(i) == v)
            .map(node_name)
            .collect()
    };
    let storage = expect(Variant::Storage);
    let families = doc["families"].as_array().unwrap();
    assert_eq!(families.len(), 2, "{families:#?}");

    // The GPU servers: the norm is every node as built, the renumbered one
    // included (buses do not count); each variant is its own outlier group.
    let gpu = &families[0];
    assert_eq!(gpu["family"], 1);
    assert_eq!(gpu["representative"], "node-0000");
    assert_eq!(gpu["nodes"], NODES - storage.len());
    let variants = [
        Variant::AcsCleared,
        Variant::NarrowLink,
        Variant::MissingNvme,
    ];
    let outlier_nodes: usize = variants.iter().map(|&v| expect(v).len()).sum();
    assert_eq!(gpu["majority"], NODES - storage.len() - outlier_nodes);
    let outliers = gpu["outliers"].as_array().unwrap();
    assert_eq!(
        outliers
            .iter()
            .map(|o| names(&o["nodes"]))
            .collect::<Vec<_>>(),
        variants.iter().map(|&v| expect(v)).collect::<Vec<_>>()
    );
    assert_eq!(doc["outlier_nodes"], outlier_nodes);

    // The narrow link: that and nothing else (host names, serials and
    // root=UUID differ on every node and are not differences).
    assert_eq!(
        differences(&outliers[1]),
        vec![(
            "link".into(),
            "0000:0a:00.0".into(),
            "link".into(),
            "Gen3 x16".into(),
            "Gen3 x8".into()
        )]
    );
    // ACS cleared on 06:08.0: the register, and the pairs and finding it moves.
    let acs = differences(&outliers[0]);
    assert!(acs.contains(&(
        "acs".into(),
        "0000:06:08.0".into(),
        "ACS Control".into(),
        "0x000c (RR CR)".into(),
        "0x0000 (off)".into()
    )));
    assert!(acs.contains(&(
        "pair".into(),
        "0000:07:00.0 → 0000:08:00.0".into(),
        "ACS-redirect bridges".into(),
        "0000:06:08.0;0000:06:09.0".into(),
        "0000:06:09.0".into()
    )));
    assert!(
        acs.iter()
            .all(|c| ["acs", "pair", "finding"].contains(&c.0.as_str())),
        "{acs:#?}"
    );
    // The missing NVMe: the device and its pair.
    let missing = differences(&outliers[2]);
    assert!(missing.contains(&(
        "device".into(),
        "0000:08:00.0".into(),
        "removed".into(),
        "endpoint 144d:a824".into(),
        Value::Null
    )));
    assert!(
        missing
            .iter()
            .any(|c| c.0 == "pair" && c.1 == "0000:07:00.0 → 0000:08:00.0")
    );
    for o in outliers {
        assert_eq!(o["error"], Value::Null);
        assert!(o["alike"].as_f64().unwrap() >= 0.5 && o["alike"].as_f64().unwrap() < 1.0);
        assert!(
            differences(o).iter().all(|c| c.0 != "cmdline"),
            "root=UUID is not a difference"
        );
    }

    // The storage servers: a family of their own, without outliers.
    let st = &families[1];
    assert_eq!(st["representative"], storage[0].as_str());
    assert_eq!(st["nodes"], storage.len());
    assert_eq!(st["majority"], storage.len());
    assert_eq!(st["outliers"], json!([]));

    // The table by node: every node once, in name order.
    let rows = doc["nodes"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["node"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        (0..NODES).map(node_name).collect::<Vec<_>>()
    );
    for (i, r) in rows.iter().enumerate() {
        let v = Variant::of(i);
        assert_eq!(
            r["family"],
            if v == Variant::Storage { 2 } else { 1 },
            "{r}"
        );
        assert_eq!(r["outlier"], variants.contains(&v), "{r}");
        if v == Variant::Storage {
            assert_eq!(r["verdict"], "clear");
            assert_eq!(r["rules"], json!([]));
        } else {
            // acs_switch's findings: ACS redirect among them.
            assert!(names(&r["rules"]).contains(&"P2P301".to_string()), "{r}");
        }
    }
    let renumbered = expect(Variant::Renumbered);
    for n in &renumbered {
        let r = rows.iter().find(|r| r["node"] == n.as_str()).unwrap();
        assert_eq!(r["outlier"], false);
        assert_eq!(r["fingerprint"], gpu["fingerprint"]);
    }
}

#[test]
fn one_thread_or_many_give_the_same_report() {
    let (_, many) = fleet(&[fleet_dir().as_os_str()]);
    let (_, one) = fleet(&[fleet_dir().as_os_str(), "--jobs".as_ref(), "1".as_ref()]);
    assert_eq!(one, many);
}

#[test]
fn text_names_the_families_outliers_and_every_node() {
    let out = p2pdoctor().arg("fleet").arg(fleet_dir()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("p2pdoctor fleet: 50 nodes, 2 families, 3 outlier nodes in 3 groups\n"),
        "{text}"
    );
    assert!(
        text.contains("~ 0000:0a:00.0: link Gen3 x16 → Gen3 x8"),
        "{text}"
    );
    assert!(text.contains("findings by node"));
    for i in 0..NODES {
        assert!(text.contains(&node_name(i)), "{i}");
    }
}

#[test]
fn alike_nodes_exit_zero_and_a_broken_snapshot_exits_three() {
    let dir = fleet_dir();
    let files: Vec<PathBuf> = [0, 1, 2]
        .iter()
        .map(|&i| dir.join(format!("{}.tar.gz", node_name(i))))
        .collect();
    let args: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    let (code, doc) = fleet(&args);
    assert_eq!(code, Some(0));
    assert_eq!(doc["families"].as_array().unwrap().len(), 1);
    assert_eq!(doc["outlier_nodes"], 0);

    // A file that is no snapshot: reported, the others still are; exit 3.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.tar.gz");
    std::fs::write(&broken, b"not a snapshot").unwrap();
    let mut with_broken = args.clone();
    with_broken.push(broken.as_os_str());
    let (code, doc) = fleet(&with_broken);
    assert_eq!(code, Some(3));
    assert_eq!(doc["nodes_total"], 4);
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 3);
    let u = &doc["unreadable"][0];
    assert_eq!(u["node"], "broken");
    assert!(!u["error"].as_str().unwrap().is_empty());

    // A directory without snapshots is a failure that says what to do.
    // A directory without snapshots is a failure that says what to do.
    let empty = tempfile::tempdir().unwrap();
    let out = p2pdoctor().arg("fleet").arg(empty.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("p2pdoctor snapshot -o"));
}

#[test]
fn lab_snapshots_from_a_real_kernel_and_a_norm_without_majority() {
    let lab = fixtures_dir().join("lab");
    let (code, doc) = fleet(&[lab.as_os_str()]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["nodes_total"], 11);
    assert_eq!(doc["unreadable"], json!([]));
    // 01-switch and 10-no-cmb are one machine but for the CMB: one family,
    // one node each, so the norm is the first by name, and text says so.
    let f = &doc["families"][0];
    assert_eq!(f["representative"], "01-switch");
    assert_eq!(f["majority"], 1);
    assert_eq!(names(&f["outliers"][0]["nodes"]), vec!["10-no-cmb"]);
    assert!(
        differences(&f["outliers"][0])
            .iter()
            .any(|c| c.0 == "p2pmem" && c.1 == "0000:03:00.0")
    );
    let out = p2pdoctor().arg("fleet").arg(&lab).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no majority"), "{text}");
}
