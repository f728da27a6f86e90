//! Many nodes at once: `p2pdoctor fleet DIR|FILES...`.
//!
//! Each snapshot is read, diagnosed and reduced to its
//! [`baseline::Record`](crate::baseline::Record) by one of several
//! threads; only a fingerprint of the record (a hash, plus one hash per
//! fact for measuring likeness) and a row of counts survive, so memory
//! stays bounded by the number of distinct fingerprints, not of nodes.
//!
//! Nodes with the same fingerprint look the same for P2P. Fingerprints are
//! then gathered into families, largest first: a fingerprint joins the
//! family whose majority it shares at least half its facts with (a node
//! with one link down is still a node of that model; a storage server is
//! not a GPU server). In each family the largest fingerprint is the norm;
//! every other one is an outlier, and what makes it differ is
//! [`compare::diff`](crate::compare::diff) between one of its nodes and the
//! norm's first node (both read again, one outlier group at a time).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::baseline;
use crate::compare::{self, Change, ChangeClass, Side};
use crate::diagnose::{Diagnosis, Status};
use crate::topology::Tree;

/// A fingerprint joins a family when it shares at least this share of its
/// facts (Jaccard index) with the family's norm.
pub const ALIKE: f64 = 0.5;

/// One input: a snapshot archive or a captured tree.
#[derive(Debug, Clone)]
pub struct Input {
    /// The file name without `.tar.gz` (`node-0017`).
    pub name: String,
    pub path: PathBuf,
}

fn is_archive(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    n.ends_with(".tar.gz") || n.ends_with(".tgz") || n.ends_with(".tar")
}

fn node_name(p: &Path) -> String {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string());
    for ext in [".tar.gz", ".tgz", ".tar"] {
        if let Some(s) = n.strip_suffix(ext) {
            return s.to_string();
        }
    }
    n
}

/// The snapshots named: files as given, directories as the archives
/// (`*.tar.gz`, `*.tgz`, `*.tar`) directly inside them. Sorted by name.
pub fn inputs(args: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut paths = Vec::new();
    for a in args {
        let meta = std::fs::metadata(a)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", a.display()))?;
        // A captured tree is a directory with sys/ in it; any other
        // directory holds snapshots.
        if meta.is_dir() && !a.join("sys").is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(a)
                .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", a.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_archive(p) && p.is_file())
                .collect();
            if found.is_empty() {
                anyhow::bail!(
                    "{} holds no snapshot (*.tar.gz, *.tgz, *.tar); write them with `p2pdoctor snapshot -o {}/NODE.tar.gz`",
                    a.display(),
                    a.display()
                );
            }
            paths.append(&mut found);
        } else {
            paths.push(a.clone());
        }
    }
    let mut out: Vec<Input> = paths
        .into_iter()
        .map(|p| Input {
            name: node_name(&p),
            path: p,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.path.cmp(&b.path)));
    // Two inputs with one name (a/n1.tar.gz, b/n1.tar.gz): name them by path.
    let mut count: HashMap<String, usize> = HashMap::new();
    for i in &out {
        *count.entry(i.name.clone()).or_default() += 1;
    }
    for i in &mut out {
        if count[&i.name] > 1 {
            i.name = i.path.display().to_string();
        }
    }
    Ok(out)
}

/// One row of the table of findings by node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRow {
    pub node: String,
    /// 1-based; 0 for an unreadable node.
    pub family: usize,
    pub fingerprint: String,
    /// Not the norm of its family.
    pub outlier: bool,
    pub verdict: String,
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
    pub inconclusive: usize,
    /// The rules with findings, each once, in ID order.
    pub rules: Vec<String>,
    pub pairs: usize,
    pub bus_addr: usize,
}

/// A group of nodes with one fingerprint that differs from its family's norm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlier {
    pub fingerprint: String,
    pub nodes: Vec<String>,
    /// The share of facts it has in common with the norm (0..1).
    pub alike: f64,
    /// The node compared with the norm's representative.
    pub compared: String,
    /// What differs, most consequential first (`diff`'s changes).
    pub differences: Vec<Change>,
    /// Why there are no differences, when the comparison failed.
    pub error: Option<String>,
}

/// Nodes that look alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Family {
    pub family: usize,
    /// The first node of the norm.
    pub representative: String,
    /// The norm's fingerprint: the one most of the family's nodes have.
    pub fingerprint: String,
    pub nodes: usize,
    /// Nodes with the norm's fingerprint.
    pub majority: usize,
    pub outliers: Vec<Outlier>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unreadable {
    pub node: String,
    pub path: String,
    pub error: String,
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fleet {
    pub nodes_total: usize,
    pub families: Vec<Family>,
    /// In name order.
    pub nodes: Vec<NodeRow>,
    pub unreadable: Vec<Unreadable>,
}

impl Fleet {
    /// Nodes that are not the norm of their family.
    pub fn outlier_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.outlier).count()
    }
}

/// Reads one input into its tree and diagnosis (commands/compare.rs wires the scan).
pub type Loader<'a> = dyn Fn(&Path) -> anyhow::Result<(Tree, Diagnosis)> + Sync + 'a;

struct Seen {
    items: Vec<u64>,
    nodes: Vec<usize>,
}

fn hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// Jaccard index of two sorted lists of hashes.
fn alike(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        1.0
    } else {
        common as f64 / union as f64
    }
}

fn row(name: &str, fp: u64, d: &Diagnosis) -> NodeRow {
    let mut rules: Vec<String> = d
        .findings
        .iter()
        .filter(|f| f.status != Status::Refuted)
        .map(|f| f.rule.clone())
        .collect();
    rules.sort_by(|a, b| {
        crate::diagnose::catalog::id_order(a).cmp(&crate::diagnose::catalog::id_order(b))
    });
    rules.dedup();
    NodeRow {
        node: name.to_string(),
        family: 0,
        fingerprint: hex(fp),
        outlier: false,
        verdict: d.summary.verdict.predicted.as_str().to_string(),
        errors: d.summary.errors,
        warnings: d.summary.warnings,
        info: d.summary.info,
        inconclusive: d.summary.inconclusive,
        rules,
        pairs: d.summary.pairs,
        bus_addr: d.summary.bus_addr,
    }
}

/// Runs `work(i)` for every i in 0..n on `threads` threads.
fn parallel(n: usize, threads: usize, work: &(dyn Fn(usize) + Sync)) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    work(i);
                }
            });
        }
    });
}

/// Diagnoses every input and groups them (see the module comment).
pub fn run(inputs: &[Input], threads: usize, load: &Loader) -> Fleet {
    let rows: Mutex<Vec<Option<NodeRow>>> = Mutex::new(vec![None; inputs.len()]);
    let seen: Mutex<HashMap<u64, Seen>> = Mutex::new(HashMap::new());
    let failed: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    parallel(inputs.len(), threads, &|i| {
        let input = &inputs[i];
        match load(&input.path) {
            Ok((tree, diagnosis)) => {
                let record = baseline::record(&tree, &diagnosis);
                let fp = record.fingerprint();
                let r = row(&input.name, fp, &diagnosis);
                // Let the tree go before taking the lock: a worker holds one
                // node at a time.
                drop(tree);
                drop(diagnosis);
                {
                    let mut seen = seen.lock().unwrap();
                    match seen.get_mut(&fp) {
                        Some(s) => s.nodes.push(i),
                        None => {
                            seen.insert(
                                fp,
                                Seen {
                                    items: record.items(),
                                    nodes: vec![i],
                                },
                            );
                        }
                    }
                }
                rows.lock().unwrap()[i] = Some(r);
            }
            Err(e) => failed.lock().unwrap().push((i, format!("{e:#}"))),
        }
    });
    let mut rows = rows.into_inner().unwrap();
    let mut seen = seen.into_inner().unwrap();
    let mut failed = failed.into_inner().unwrap();
    failed.sort();

    // Fingerprints, most nodes first (ties: the first node by name).
    let mut groups: Vec<(u64, Vec<usize>)> = seen
        .iter_mut()
        .map(|(fp, s)| {
            s.nodes.sort_unstable();
            (*fp, s.nodes.clone())
        })
        .collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(&b.1[0])));

    // Families: each fingerprint joins the most alike norm, or starts one.
    struct Building {
        norm: u64,
        members: Vec<(u64, f64)>,
    }
    let mut families: Vec<Building> = Vec::new();
    for (fp, _) in &groups {
        let items = &seen[fp].items;
        let best = families
            .iter_mut()
            .map(|f| {
                let a = alike(items, &seen[&f.norm].items);
                (a, f)
            })
            .filter(|(a, _)| *a >= ALIKE)
            .max_by(|x, y| x.0.total_cmp(&y.0));
        match best {
            Some((a, f)) => f.members.push((*fp, a)),
            None => families.push(Building {
                norm: *fp,
                members: vec![],
            }),
        }
    }
    let nodes_of: HashMap<u64, &Vec<usize>> = groups.iter().map(|(fp, n)| (*fp, n)).collect();

    // What makes each outlier differ: diff against the norm's first node.
    let mut out_families = Vec::new();
    for (k, f) in families.iter().enumerate() {
        let norm_nodes = nodes_of[&f.norm];
        let rep = norm_nodes[0];
        let mut outliers: Vec<Outlier> = f
            .members
            .iter()
            .map(|&(fp, a)| {
                let nodes = nodes_of[&fp];
                Outlier {
                    fingerprint: hex(fp),
                    nodes: nodes.iter().map(|&i| inputs[i].name.clone()).collect(),
                    alike: (a * 1000.0).round() / 1000.0,
                    compared: inputs[nodes[0]].name.clone(),
                    differences: Vec::new(),
                    error: None,
                }
            })
            .collect();
        if !outliers.is_empty() {
            match load(&inputs[rep].path) {
                Err(e) => {
                    for o in &mut outliers {
                        o.error = Some(format!("reading {} again: {e:#}", inputs[rep].name));
                    }
                }
                Ok((rt, rd)) => {
                    let slots: Vec<Mutex<&mut Outlier>> =
                        outliers.iter_mut().map(Mutex::new).collect();
                    parallel(slots.len(), threads, &|j| {
                        let mut o = slots[j].lock().unwrap();
                        let at = nodes_of[&f.members[j].0][0];
                        match load(&inputs[at].path) {
                            Ok((t, d)) => {
                                let diff = compare::diff(
                                    &Side {
                                        name: inputs[rep].name.clone(),
                                        tree: &rt,
                                        diagnosis: &rd,
                                    },
                                    &Side {
                                        name: inputs[at].name.clone(),
                                        tree: &t,
                                        diagnosis: &d,
                                    },
                                    &[],
                                );
                                o.differences = diff
                                    .changes
                                    .into_iter()
                                    .filter(|c| !host_specific(c))
                                    .collect();
                            }
                            Err(e) => o.error = Some(format!("reading it again: {e:#}")),
                        }
                    });
                }
            }
        }
        for &i in norm_nodes {
            if let Some(r) = rows[i].as_mut() {
                r.family = k + 1;
            }
        }
        for (fp, _) in &f.members {
            for &i in nodes_of[fp] {
                if let Some(r) = rows[i].as_mut() {
                    r.family = k + 1;
                    r.outlier = true;
                }
            }
        }
        out_families.push(Family {
            family: k + 1,
            representative: inputs[rep].name.clone(),
            fingerprint: hex(f.norm),
            nodes: norm_nodes.len()
                + f.members
                    .iter()
                    .map(|m| nodes_of[&m.0].len())
                    .sum::<usize>(),
            majority: norm_nodes.len(),
            outliers,
        });
    }
    let unreadable = failed
        .into_iter()
        .map(|(i, error)| Unreadable {
            node: inputs[i].name.clone(),
            path: inputs[i].path.display().to_string(),
            error,
        })
        .collect();
    Fleet {
        nodes_total: inputs.len(),
        families: out_families,
        nodes: rows.into_iter().flatten().collect(),
        unreadable,
    }
}

/// A command-line change outside the P2P parameters (root=UUID=...,
/// console=): every node has its own, and the fingerprint ignores it too.
fn host_specific(c: &Change) -> bool {
    c.class == ChangeClass::Cmdline
        && baseline::relevant_cmdline(c.before.as_deref().unwrap_or(""))
            == baseline::relevant_cmdline(c.after.as_deref().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likeness_is_jaccard() {
        assert_eq!(alike(&[1, 2, 3, 4], &[1, 2, 3, 4]), 1.0);
        assert_eq!(alike(&[1, 2, 3, 4], &[1, 2, 3, 5]), 3.0 / 5.0);
        assert_eq!(alike(&[1, 2], &[3, 4]), 0.0);
        assert_eq!(alike(&[], &[]), 1.0);
    }

    #[test]
    fn names_drop_the_archive_suffix() {
        assert_eq!(node_name(Path::new("/x/node-17.tar.gz")), "node-17");
        assert_eq!(node_name(Path::new("n.tgz")), "n");
        assert_eq!(node_name(Path::new("dir")), "dir");
    }
}
