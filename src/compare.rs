//! What changed between two machines, or one machine at two times, that
//! matters for P2P: `p2pdoctor diff A B`.
//!
//! A stage after `diagnose`: it takes each side's tree and diagnosis as
//! values and returns a [`Diff`], plain data that `render` turns into text
//! or JSON. Nothing here reads the machine.
//!
//! Devices are matched before anything is compared, because bus numbers
//! move when a card is added or a BIOS changes its enumeration: first by
//! Device Serial Number, then by address with the same vendor and device
//! ID, then by vendor and device ID with the same chain of device and
//! function numbers from the root bus down (what stays when buses
//! renumber). Whatever is left was added or removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::diagnose::{Diagnosis, Finding, Pair};
use crate::pci::Bdf;
use crate::topology::{NodeId, Tree};

/// The kinds of difference, in the order a report ranks them: what
/// changes the kernel's decisions first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeClass {
    /// A pair's map type, distance or path class.
    Pair,
    /// A finding appeared or went away.
    Finding,
    /// ACS Control bits of a function.
    Acs,
    /// IOMMU mode, a group's domain type, who shares a group.
    Iommu,
    /// The kernel release.
    Kernel,
    /// The kernel command line.
    Cmdline,
    /// A device added, removed or moved to another address.
    Device,
    /// Link speed or width.
    Link,
    /// P2P memory: size, published.
    P2pmem,
    /// CPU vendor, family, model.
    Cpu,
}

impl ChangeClass {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChangeClass::Pair => "pair",
            ChangeClass::Finding => "finding",
            ChangeClass::Acs => "acs",
            ChangeClass::Iommu => "iommu",
            ChangeClass::Kernel => "kernel",
            ChangeClass::Cmdline => "cmdline",
            ChangeClass::Device => "device",
            ChangeClass::Link => "link",
            ChangeClass::P2pmem => "p2pmem",
            ChangeClass::Cpu => "cpu",
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub class: ChangeClass,
    /// What it is about: `0000:03:00.0`, `0000:03:00.0 → 0000:04:00.0`,
    /// `P2P301 0000:06:08.0`, `host`.
    pub subject: String,
    /// What differs: `map type`, `ACS Control`, `added`, ...
    pub what: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// How a device of A was found in B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    SerialNumber,
    Address,
    Path,
}

/// A device present on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matched {
    pub a: Bdf,
    pub b: Bdf,
    pub by: MatchedBy,
}

/// Everything that differs, ranked by class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    /// Devices found on both sides, and how.
    pub matched: Vec<Matched>,
    pub changes: Vec<Change>,
    /// Classes left out on request (`--ignore`).
    pub ignored: Vec<ChangeClass>,
}

impl Diff {
    /// No difference (after `--ignore`).
    pub fn same(&self) -> bool {
        self.changes.is_empty()
    }
}

/// One side of the comparison.
pub struct Side<'a> {
    /// How to name it (`the snapshot node3.tar.gz`).
    pub name: String,
    pub tree: &'a Tree,
    pub diagnosis: &'a Diagnosis,
}

/// The host bridge's place among the machine's host bridges, then device
/// and function numbers from the root bus down: what stays the same when
/// bus numbers move.
fn path_signature(tree: &Tree, id: NodeId) -> Vec<u16> {
    let mut sig: Vec<u16> = std::iter::once(id)
        .chain(tree.ancestors(id))
        .map(|n| u16::from(tree.node(n).bdf().devfn()))
        .collect();
    sig.push(tree.node(id).host_bridge as u16 | 0x8000);
    sig.reverse();
    sig
}

/// Where a function sits, as text that stays the same when bus numbers
/// move and across machines built alike: the host bridge's place, then
/// device.function from the root bus down (`hb0/03.0/00.0/08.0/00.0`).
/// What `baseline` and `fleet` match devices by.
pub fn place(tree: &Tree, id: NodeId) -> String {
    let sig = path_signature(tree, id);
    let mut out = format!("hb{}", sig[0] & 0x7fff);
    for devfn in &sig[1..] {
        out.push_str(&format!("/{:02x}.{}", devfn >> 3, devfn & 7));
    }
    out
}

fn ids(tree: &Tree, id: NodeId) -> (Option<u16>, Option<u16>) {
    let f = &tree.node(id).facts;
    (f.vendor, f.device)
}

/// Pairs each device of A with one of B (see the module comment).
fn match_devices(a: &Tree, b: &Tree) -> Vec<(NodeId, NodeId, MatchedBy)> {
    let mut out = Vec::new();
    let mut left_a: BTreeSet<NodeId> = a.ids().filter(|&i| !a.node(i).facts.missing).collect();
    let mut left_b: BTreeSet<NodeId> = b.ids().filter(|&i| !b.node(i).facts.missing).collect();
    // 1. Device Serial Number, where it is unique on both sides (some
    //    vendors give every port of a switch the same one).
    let serials = |t: &Tree, left: &BTreeSet<NodeId>| {
        let mut m: HashMap<(u64, u8), Vec<NodeId>> = HashMap::new();
        for &i in left {
            if let Some(dsn) = t.node(i).caps.dsn.filter(|&d| d != 0) {
                m.entry((dsn, t.node(i).bdf().function))
                    .or_default()
                    .push(i);
            }
        }
        m
    };
    let (sa, sb) = (serials(a, &left_a), serials(b, &left_b));
    let mut by_serial: Vec<(NodeId, NodeId)> = sa
        .iter()
        .filter_map(
            |(k, va)| match (va.as_slice(), sb.get(k).map(Vec::as_slice)) {
                ([x], Some([y])) if ids(a, *x) == ids(b, *y) => Some((*x, *y)),
                _ => None,
            },
        )
        .collect();
    by_serial.sort_unstable();
    for (x, y) in by_serial {
        left_a.remove(&x);
        left_b.remove(&y);
        out.push((x, y, MatchedBy::SerialNumber));
    }
    // 2. The same IDs at the same place (host bridge, then the chain of
    //    device/function numbers): identical cards in other slots, and
    //    buses renumbered, cannot be confused this way.
    type Place = (Option<u16>, Option<u16>, Vec<u16>);
    let mut by_path: HashMap<Place, Vec<NodeId>> = HashMap::new();
    for &y in &left_b {
        let (v, d) = ids(b, y);
        by_path
            .entry((v, d, path_signature(b, y)))
            .or_default()
            .push(y);
    }
    for x in left_a.clone() {
        let (v, d) = ids(a, x);
        if let Some(list) = by_path.get_mut(&(v, d, path_signature(a, x)))
            && !list.is_empty()
        {
            let y = list.remove(0);
            left_a.remove(&x);
            left_b.remove(&y);
            out.push((x, y, MatchedBy::Path));
        }
    }
    // 3. The same address and IDs, for what moved elsewhere in the tree
    //    without its bus changing.
    for x in left_a.clone() {
        if let Some(y) = b.find(a.node(x).bdf())
            && left_b.contains(&y)
            && ids(a, x) == ids(b, y)
        {
            left_a.remove(&x);
            left_b.remove(&y);
            out.push((x, y, MatchedBy::Address));
        }
    }
    out.sort_by_key(|&(x, _, _)| a.node(x).bdf());
    out
}

fn push(
    out: &mut Vec<Change>,
    class: ChangeClass,
    subject: impl Into<String>,
    what: &str,
    before: Option<String>,
    after: Option<String>,
) {
    if before != after {
        out.push(Change {
            class,
            subject: subject.into(),
            what: what.to_string(),
            before,
            after,
        });
    }
}

/// Compares the two sides; `ignore` drops whole classes.
pub fn diff(a: &Side, b: &Side, ignore: &[ChangeClass]) -> Diff {
    let (ta, tb) = (a.tree, b.tree);
    let matched = match_devices(ta, tb);
    let to_b: HashMap<Bdf, Bdf> = matched
        .iter()
        .map(|&(x, y, _)| (ta.node(x).bdf(), tb.node(y).bdf()))
        .collect();
    let mut changes = Vec::new();

    // Host: kernel, command line, CPU, IOMMU mode.
    let (ha, hb) = (&ta.host, &tb.host);
    push(
        &mut changes,
        ChangeClass::Kernel,
        "host",
        "kernel release",
        ha.kernel_release.clone(),
        hb.kernel_release.clone(),
    );
    push(
        &mut changes,
        ChangeClass::Kernel,
        "host",
        "CONFIG_PCI_P2PDMA",
        ha.p2pdma_config.map(|c| c.to_string()),
        hb.p2pdma_config.map(|c| c.to_string()),
    );
    push(
        &mut changes,
        ChangeClass::Cmdline,
        "host",
        "kernel command line",
        Some(ha.cmdline.raw.clone()),
        Some(hb.cmdline.raw.clone()),
    );
    let cpu = |h: &crate::scan::HostFacts| {
        h.cpu.vendor.as_ref().map(|v| {
            format!(
                "{v} family {:#x} model {:#x}{}",
                h.cpu.family.unwrap_or(0),
                h.cpu.model.unwrap_or(0),
                h.cpu
                    .model_name
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        })
    };
    push(
        &mut changes,
        ChangeClass::Cpu,
        "host",
        "CPU",
        cpu(ha),
        cpu(hb),
    );
    push(
        &mut changes,
        ChangeClass::Iommu,
        "host",
        "IOMMU mode",
        Some(a.diagnosis.header.iommu.describe.clone()),
        Some(b.diagnosis.header.iommu.describe.clone()),
    );

    // Devices: added, removed, moved.
    let matched_a: BTreeSet<NodeId> = matched.iter().map(|m| m.0).collect();
    let matched_b: BTreeSet<NodeId> = matched.iter().map(|m| m.1).collect();
    let describe = |t: &Tree, i: NodeId| format!("{} {}", t.node(i).role.label(), t.node(i).name());
    for i in ta
        .ids()
        .filter(|i| !matched_a.contains(i) && !ta.node(*i).facts.missing)
    {
        push(
            &mut changes,
            ChangeClass::Device,
            ta.node(i).bdf().to_string(),
            "removed",
            Some(describe(ta, i)),
            None,
        );
    }
    for i in tb
        .ids()
        .filter(|i| !matched_b.contains(i) && !tb.node(*i).facts.missing)
    {
        push(
            &mut changes,
            ChangeClass::Device,
            tb.node(i).bdf().to_string(),
            "added",
            None,
            Some(describe(tb, i)),
        );
    }
    for &(x, y, _) in &matched {
        let (na, nb) = (ta.node(x), tb.node(y));
        let subject = if na.bdf() == nb.bdf() {
            na.bdf().to_string()
        } else {
            format!("{} (now {})", na.bdf(), nb.bdf())
        };
        push(
            &mut changes,
            ChangeClass::Device,
            subject.clone(),
            "address",
            Some(na.bdf().to_string()),
            Some(nb.bdf().to_string()),
        );
        push(
            &mut changes,
            ChangeClass::Device,
            subject.clone(),
            "driver",
            na.facts.driver.clone(),
            nb.facts.driver.clone(),
        );
        let link = |n: &crate::topology::Node| {
            n.link
                .as_ref()
                .filter(|l| l.is_up() || l.width.is_some())
                .map(|l| l.describe())
        };
        push(
            &mut changes,
            ChangeClass::Link,
            subject.clone(),
            "link",
            link(na),
            link(nb),
        );
        let acs = |n: &crate::topology::Node| {
            n.caps.acs.as_ref().map(|acs| match acs.ctrl {
                Some(c) if c.0 & 0x7f == 0 => format!("{:#06x} (off)", c.0),
                Some(c) => format!("{:#06x} ({})", c.0, c.names().join(" ")),
                None => "unknown".to_string(),
            })
        };
        push(
            &mut changes,
            ChangeClass::Acs,
            subject.clone(),
            "ACS Control",
            acs(na),
            acs(nb),
        );
        push(
            &mut changes,
            ChangeClass::Iommu,
            subject.clone(),
            "IOMMU group type",
            na.facts.iommu_group_type.clone(),
            nb.facts.iommu_group_type.clone(),
        );
        let p2p = |n: &crate::topology::Node| {
            n.facts.p2pmem.as_ref().map(|m| {
                format!(
                    "{} {}",
                    m.size
                        .map(crate::units::human_bytes)
                        .unwrap_or_else(|| "?".into()),
                    match m.published {
                        Some(true) => "published",
                        Some(false) => "not published",
                        None => "",
                    }
                )
                .trim()
                .to_string()
            })
        };
        push(
            &mut changes,
            ChangeClass::P2pmem,
            subject,
            "P2P memory",
            p2p(na),
            p2p(nb),
        );
    }
    // Who shares an IOMMU group with whom (group numbers themselves move).
    let peers = |t: &Tree, map: &dyn Fn(Bdf) -> Option<Bdf>| -> BTreeMap<Bdf, BTreeSet<Bdf>> {
        let mut groups: BTreeMap<u32, Vec<Bdf>> = BTreeMap::new();
        for n in &t.nodes {
            if let (Some(g), Some(b)) = (n.facts.iommu_group, map(n.bdf())) {
                groups.entry(g).or_default().push(b);
            }
        }
        let mut out = BTreeMap::new();
        for members in groups.values() {
            for &m in members {
                let others: BTreeSet<Bdf> = members.iter().copied().filter(|&o| o != m).collect();
                out.insert(m, others);
            }
        }
        out
    };
    let ga = peers(ta, &|b| to_b.get(&b).copied());
    let gb = peers(tb, &|b| Some(b));
    for (dev, with_a) in &ga {
        if let Some(with_b) = gb.get(dev)
            && with_a != with_b
        {
            let list = |s: &BTreeSet<Bdf>| {
                if s.is_empty() {
                    "alone".to_string()
                } else {
                    s.iter()
                        .map(|b| b.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            push(
                &mut changes,
                ChangeClass::Iommu,
                dev.to_string(),
                "shares its IOMMU group with",
                Some(list(with_a)),
                Some(list(with_b)),
            );
        }
    }

    // Pairs, by the devices matched.
    let pair_b: HashMap<(Bdf, Bdf), Pair<'_>> = b
        .diagnosis
        .pairs
        .iter()
        .map(|p| ((p.provider(), p.client()), p))
        .collect();
    let mut seen_b = BTreeSet::new();
    for p in &a.diagnosis.pairs {
        let key = to_b
            .get(&p.provider())
            .zip(to_b.get(&p.client()))
            .map(|(x, y)| (*x, *y));
        let subject = format!("{} → {}", p.provider(), p.client());
        let Some(q) = key.and_then(|k| pair_b.get(&k)) else {
            push(
                &mut changes,
                ChangeClass::Pair,
                subject,
                "pair",
                Some(p.verdict().map_type.to_string()),
                None,
            );
            continue;
        };
        seen_b.insert((q.provider(), q.client()));
        push(
            &mut changes,
            ChangeClass::Pair,
            subject.clone(),
            "map type",
            Some(p.verdict().map_type.to_string()),
            Some(q.verdict().map_type.to_string()),
        );
        push(
            &mut changes,
            ChangeClass::Pair,
            subject.clone(),
            "distance",
            Some(p.verdict().distance.to_string()),
            Some(q.verdict().distance.to_string()),
        );
        push(
            &mut changes,
            ChangeClass::Pair,
            subject.clone(),
            "path class",
            Some(p.path_class().as_str().into()),
            Some(q.path_class().as_str().into()),
        );
        push(
            &mut changes,
            ChangeClass::Pair,
            subject.clone(),
            "effective path class",
            Some(p.effective_path_class().as_str().into()),
            Some(q.effective_path_class().as_str().into()),
        );
        let acs = |r: Pair<'_>| {
            Some(
                r.verdict()
                    .acs_redirect
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(";"),
            )
            .filter(|s| !s.is_empty())
        };
        let acs_a = acs(p).map(|s| {
            s.split(';')
                .map(|x| {
                    x.parse::<Bdf>()
                        .ok()
                        .and_then(|b| to_b.get(&b).copied())
                        .map(|b| b.to_string())
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join(";")
        });
        push(
            &mut changes,
            ChangeClass::Pair,
            subject,
            "ACS-redirect bridges",
            acs_a,
            acs(*q),
        );
    }
    for q in &b.diagnosis.pairs {
        if !seen_b.contains(&(q.provider(), q.client())) {
            push(
                &mut changes,
                ChangeClass::Pair,
                format!("{} → {}", q.provider(), q.client()),
                "pair",
                None,
                Some(q.verdict().map_type.to_string()),
            );
        }
    }

    // Findings, by rule and the devices they name (in B's addresses).
    let key_a = |f: &Finding| -> (String, Vec<Bdf>) {
        let mut s: Vec<Bdf> = f
            .subjects
            .iter()
            .map(|b| to_b.get(b).copied().unwrap_or(*b))
            .collect();
        s.sort_unstable();
        (f.rule.clone(), s)
    };
    let key_b = |f: &Finding| (f.rule.clone(), f.subjects.clone());
    let fa: BTreeMap<_, &Finding> = a.diagnosis.findings.iter().map(|f| (key_a(f), f)).collect();
    let fb: BTreeMap<_, &Finding> = b.diagnosis.findings.iter().map(|f| (key_b(f), f)).collect();
    let label = |f: &Finding| format!("{} {} ({})", f.severity.as_str(), f.name, f.status.as_str());
    let subject = |k: &(String, Vec<Bdf>)| {
        if k.1.is_empty() {
            k.0.clone()
        } else {
            format!(
                "{} {}",
                k.0,
                k.1.iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    };
    for (k, f) in &fa {
        match fb.get(k) {
            None => push(
                &mut changes,
                ChangeClass::Finding,
                subject(k),
                "finding",
                Some(label(f)),
                None,
            ),
            Some(g) => push(
                &mut changes,
                ChangeClass::Finding,
                subject(k),
                "finding",
                Some(label(f)),
                Some(label(g)),
            ),
        }
    }
    for (k, g) in &fb {
        if !fa.contains_key(k) {
            push(
                &mut changes,
                ChangeClass::Finding,
                subject(k),
                "finding",
                None,
                Some(label(g)),
            );
        }
    }

    changes.retain(|c| !ignore.contains(&c.class));
    changes.sort_by_key(|c| c.class);
    let mut ignored = ignore.to_vec();
    ignored.sort_unstable();
    ignored.dedup();
    Diff {
        a: a.name.clone(),
        b: b.name.clone(),
        matched: matched
            .iter()
            .map(|&(x, y, by)| Matched {
                a: ta.node(x).bdf(),
                b: tb.node(y).bdf(),
                by,
            })
            .collect(),
        changes,
        ignored,
    }
}
