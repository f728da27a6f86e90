//! Pairs share a path's decision (diagnose::pairs): held here to the
//! decision computed for each pair alone, on every fixture and lab
//! capture, so sharing can never change an answer.

mod common;

use common::*;
use p2pdoctor::diagnose::{self, KernelData, Options, P2pView};
use p2pdoctor::root::SystemRoot;
use p2pdoctor::scan::{self, ScanOptions};
use p2pdoctor::topology::Tree;

fn tree_at(root: &std::path::Path) -> Tree {
    let root = SystemRoot::open(root).unwrap();
    Tree::build(scan::scan(
        &root,
        &ScanOptions {
            no_names: true,
            ..Default::default()
        },
    ))
}

/// Every pair of `check --all-pairs` against `calc_map_type_and_dist()`
/// and the path computed for that pair alone; the number of distinct
/// paths.
fn holds(what: &str, tree: &Tree) -> usize {
    let d = diagnose::diagnose(
        tree,
        &Options {
            all_pairs: true,
            ..Default::default()
        },
    );
    // As diagnose() builds them.
    let data = KernelData::embedded();
    let kernel = data.for_release(tree.host.kernel_release.as_deref());
    let allocate_seen = tree
        .nodes
        .iter()
        .any(|n| n.facts.p2pmem.as_ref().and_then(|m| m.allocate) == Some(true))
        .then_some(true);
    let kernel = kernel.with_live_evidence(allocate_seen);
    let (view, _) = P2pView::from_tree(tree, &tree.host.cmdline.acs, &kernel);
    for p in &d.pairs {
        let (a, b) = (p.provider_id(), p.client_id());
        let alone = view.calc_map_type_and_dist(&kernel, a, b);
        let label = format!("{what}: {} -> {}", p.provider(), p.client());
        assert_eq!(
            (alone.provider, alone.client),
            (p.provider(), p.client()),
            "{label}"
        );
        assert_eq!(&alone.verdict, p.verdict(), "{label}: verdict");
        assert_eq!(
            alone.kernel_messages,
            p.kernel_messages(),
            "{label}: kernel lines"
        );
        let path = tree.path(a, b);
        assert_eq!(path.class, p.path_class(), "{label}: path class");
        assert_eq!(path.switches.len(), p.switches(), "{label}: switches");
        let route = p.route(tree);
        assert_eq!(route.first(), Some(&a), "{label}: route");
        assert_eq!(route.last(), Some(&b), "{label}: route");
    }
    d.pairs.paths().len()
}

#[test]
fn every_pair_gets_the_answer_it_would_get_alone() {
    let mut shared = 0;
    for name in spec_names() {
        let built = build(&name);
        let paths = holds(&name, &tree_at(&built.root()));
        let tree = tree_at(&built.root());
        let endpoints = tree.nodes.iter().filter(|n| n.children.is_empty()).count();
        if paths < endpoints * endpoints {
            shared += 1;
        }
    }
    for entry in std::fs::read_dir(fixtures_dir().join("lab")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "gz") {
            holds(&path.display().to_string(), &tree_at(&path));
        }
    }
    assert!(
        shared > 0,
        "no fixture shares a path: the test proves nothing"
    );
}

#[test]
fn a_large_server_shares_paths_and_its_pairs_stay_exact() {
    // 300 functions: hundreds of endpoints below a few switch ports.
    let dir = tempfile::tempdir().unwrap();
    p2pdoctor_fixture::build(&p2pdoctor_fixture::large_server(300), dir.path()).unwrap();
    let tree = tree_at(dir.path());
    let paths = holds("large_server(300)", &tree);
    let d = diagnose::diagnose(
        &tree,
        &Options {
            all_pairs: true,
            ..Default::default()
        },
    );
    assert!(
        paths * 20 < d.pairs.len(),
        "{paths} paths for {} pairs: pairs alike on a path do not share it",
        d.pairs.len()
    );
}

#[test]
fn a_large_servers_matrix_shows_groups_of_devices_that_sit_alike() {
    let dir = tempfile::tempdir().unwrap();
    p2pdoctor_fixture::build(&p2pdoctor_fixture::large_server(300), dir.path()).unwrap();
    let out = run(dir.path(), &["check", "--all-pairs", "--width", "200"]);
    assert!(out.status.code().is_some_and(|c| c <= 2), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let start = text
        .find("each a group of devices that sit alike")
        .unwrap_or_else(|| panic!("no grouped matrix:\n{text}"));
    let matrix = &text[start..text[start..].find("legend").unwrap() + start];
    // A row per group, at most 48, each listed with its devices.
    let rows = matrix
        .lines()
        .filter(|l| l.trim_start().starts_with('[') && l.contains("  "))
        .filter(|l| !l.contains(" · "))
        .count();
    assert!((2..=48).contains(&rows), "{rows} rows:\n{matrix}");
    let groups: Vec<&str> = matrix.lines().filter(|l| l.contains(" devices)")).collect();
    assert!(!groups.is_empty(), "no group lists its devices:\n{matrix}");
    // Every cell symbol shown is in the legend.
    let legend = &text[text.find("legend").unwrap()..];
    for sym in ["B<n>", "H<n>", "N<n>"] {
        let code = &sym[..1];
        let shown = matrix
            .lines()
            .filter(|l| !l.contains(" · "))
            .any(|l| l.split_whitespace().skip(1).any(|c| c.starts_with(code)));
        assert_eq!(shown, legend.contains(sym), "{sym}:\n{matrix}\n{legend}");
    }
}

#[test]
fn the_selection_leaves_no_path_that_no_pair_uses() {
    // 03-multifunction-iommu: the chipset functions' pairs are hidden by
    // default, and their paths go with them.
    let lab = fixtures_dir().join("lab/03-multifunction-iommu.tar.gz");
    for args in [
        &["check", "--format", "json"][..],
        &["check", "--all-devices", "--format", "json"],
    ] {
        let doc = json_on(&lab, args);
        let paths = doc["paths"].as_array().unwrap();
        let mut used = vec![false; paths.len()];
        for p in doc["pairs"].as_array().unwrap() {
            used[p["path"].as_u64().unwrap() as usize] = true;
        }
        assert!(used.iter().all(|u| *u), "{args:?}: a path no pair uses");
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(p["id"], i, "{args:?}: paths are numbered in order");
        }
    }
}
