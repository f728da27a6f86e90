//! Ordering and multi-path family: one device behind two ports, long
//! switch cascades, Relaxed Ordering on P2P endpoints.

use std::collections::{BTreeMap, BTreeSet};

use super::{Ctx, RuleRef, bdf_list, group_pairs, pairs_phrase};
use crate::diagnose::{Finding, Severity, Status};
use crate::pci::Bdf;
use crate::topology::NodeId;

pub const DUAL_PATH: RuleRef = RuleRef {
    id: "P2P601",
    name: "dual-path-device",
};
pub const CASCADED: RuleRef = RuleRef {
    id: "P2P602",
    name: "cascaded-switches",
};
pub const RELAXED: RuleRef = RuleRef {
    id: "P2P603",
    name: "relaxed-ordering",
};

/// Functions of one thing (`key`) that sit below different upstream ports.
fn behind_different_ports(ctx: &Ctx, ids: &[NodeId]) -> bool {
    let parents: BTreeSet<Option<NodeId>> = ids.iter().map(|&i| ctx.tree.node(i).parent).collect();
    parents.len() > 1
}

pub(crate) fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;

    // One NVMe subsystem through several controllers on different ports.
    let mut by_nqn: BTreeMap<&str, Vec<NodeId>> = BTreeMap::new();
    for c in &tree.nvme {
        if let (Some(nqn), Some(bdf)) = (c.subsysnqn.as_deref(), c.pci)
            && !nqn.is_empty()
            && let Some(id) = tree.find(bdf)
        {
            by_nqn.entry(nqn).or_default().push(id);
        }
    }
    let mut reported: BTreeSet<Vec<NodeId>> = BTreeSet::new();
    for (nqn, ids) in &by_nqn {
        if ids.len() < 2 || !behind_different_ports(ctx, ids) {
            continue;
        }
        reported.insert(ids.clone());
        let bdfs: Vec<Bdf> = ids.iter().map(|&i| ctx.bdf(i)).collect();
        out.push(
            DUAL_PATH
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    bdfs.clone(),
                    format!(
                        "{} are controllers of one NVMe subsystem ({nqn}) below different upstream ports: P2P writes through one port and reads through the other are not ordered, and the kernel treats them as unrelated devices",
                        bdf_list(bdfs)
                    ),
                )
                .fix("Do the P2P I/O of one job through one controller, or flush (NVMe Flush, or a read through the same port) before handing data to the other path"),
        );
    }
    // One Device Serial Number below different ports.
    let mut by_dsn: BTreeMap<u64, Vec<NodeId>> = BTreeMap::new();
    for (id, n) in tree.nodes.iter().enumerate() {
        if let Some(d) = n.caps.dsn
            && d != 0
            && d != u64::MAX
            && n.role.is_endpoint()
        {
            by_dsn.entry(d).or_default().push(id);
        }
    }
    for (dsn, ids) in &by_dsn {
        if ids.len() < 2 || !behind_different_ports(ctx, ids) || reported.contains(ids) {
            continue;
        }
        let bdfs: Vec<Bdf> = ids.iter().map(|&i| ctx.bdf(i)).collect();
        out.push(
            DUAL_PATH
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    bdfs.clone(),
                    format!(
                        "{} report one Device Serial Number ({dsn:016x}) below different upstream ports: one device reachable by two paths, with no ordering between them",
                        bdf_list(bdfs)
                    ),
                )
                .fix("Send the P2P traffic of one job through one port"),
        );
    }

    let allowed = ctx
        .pairs
        .iter()
        .filter(|p| p.verdict().map_type != crate::diagnose::MapType::NotSupported);
    let cascaded = group_pairs(allowed, |p| (p.switches() >= 2).then_some(p.switches()));
    for (n, pairs) in cascaded {
        out.push(
            CASCADED
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    pairs.iter().flat_map(|p| [p.provider(), p.client()]),
                    format!(
                        "{} pass through {n} PCIe switches: each adds latency and must agree on ACS, MPS and link settings",
                        pairs_phrase(&pairs),
                    ),
                )
                .fix("Nothing to fix; for the shortest path put the pair below one switch"),
        );
    }

    let relaxed: Vec<Bdf> = ctx
        .pair_endpoints()
        .into_iter()
        .filter(|&id| tree.node(id).dev_ctl().is_some_and(|c| c.relaxed_ordering))
        .map(|id| ctx.bdf(id))
        .collect();
    if !relaxed.is_empty() {
        let first = relaxed[0];
        out.push(
            RELAXED
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    relaxed.clone(),
                    format!(
                        "Relaxed Ordering is enabled on {}: their writes may pass earlier writes; fine for data read after a completion, but some root complexes mishandle relaxed P2P writes",
                        bdf_list(relaxed)
                    ),
                )
                .fix(format!(
                    "If copies through the root complex show corruption, clear it: setpci -s {first} CAP_EXP+8.w=0000:0010"
                )),
        );
    }
    out
}
