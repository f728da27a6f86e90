//! Ordering and multi-path family: one device behind two ports, long
//! switch cascades, Relaxed Ordering on P2P endpoints.
//!
//! Relaxed Ordering (Device Control bit 4) has three rules that never give
//! opposite advice for one function:
//! - P2P604: RO on below a root port the kernel quirks as
//!   `PCI_DEV_FLAGS_NO_RELAXED_ORDERING` (rules/relaxed_ordering.toml):
//!   turn it off, the kernel itself would have.
//! - P2P605: RO off on a GPUDirect RDMA NIC (Mellanox/NVIDIA, 15b3) where
//!   no quirk asks for it: NVIDIA's stack (mlx5, NCCL) only uses RO when
//!   this bit is on; turn it on and measure (platform-dependent: info).
//! - P2P603: RO on any other P2P endpoint: nothing to change unless
//!   copies through the root complex corrupt. A function P2P604 names, and
//!   a GPUDirect NIC (where on is the vendor's recommended state), are left
//!   out of it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Ctx, Family, Pass, Rule, RuleRef, bdf_list, group_pairs, p2p_class, pairs_phrase};
use crate::diagnose::{Finding, Severity, Status};
use crate::pci::Bdf;
use crate::topology::{NodeId, Role, Tree};

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
pub const RELAXED_QUIRKED_PORT: RuleRef = RuleRef {
    id: "P2P604",
    name: "relaxed-ordering-quirked-root-port",
};
pub const RELAXED_OFF_RDMA_NIC: RuleRef = RuleRef {
    id: "P2P605",
    name: "relaxed-ordering-off-rdma-nic",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(DUAL_PATH, Family::Ordering, dual_path),
    Rule::check(CASCADED, Family::Ordering, cascaded),
    Rule::pass(RELAXED, Family::Ordering, &RELAXED_ORDERING),
    Rule::pass(RELAXED_QUIRKED_PORT, Family::Ordering, &RELAXED_ORDERING),
    Rule::pass(RELAXED_OFF_RDMA_NIC, Family::Ordering, &RELAXED_ORDERING),
];

/// The three Relaxed Ordering rules divide the functions between them
/// (see the module comment), so one pass decides each function's rule.
static RELAXED_ORDERING: Pass = Pass {
    run: relaxed_ordering,
    emits: &[RELAXED, RELAXED_QUIRKED_PORT, RELAXED_OFF_RDMA_NIC],
};

/// One entry of rules/relaxed_ordering.toml: root ports the kernel marks
/// `PCI_DEV_FLAGS_NO_RELAXED_ORDERING`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoQuirk {
    pub name: String,
    pub vendor: u16,
    pub devices: Vec<u16>,
    pub since: String,
    pub effect: String,
    pub source: String,
}

#[derive(Deserialize)]
struct RoTable {
    root_port: Vec<RoQuirk>,
}

const RO_QUIRKS: &str = include_str!("../../../rules/relaxed_ordering.toml");

/// The embedded table (checked by a unit test).
pub(crate) fn ro_quirks() -> Vec<RoQuirk> {
    toml::from_str::<RoTable>(RO_QUIRKS)
        .map(|t| t.root_port)
        .unwrap_or_default()
}

/// The root port above `id` and its quirk entry, when the kernel marks it
/// `PCI_DEV_FLAGS_NO_RELAXED_ORDERING`.
fn quirked_root_port<'t>(
    tree: &Tree,
    table: &'t [RoQuirk],
    id: NodeId,
) -> Option<(NodeId, &'t RoQuirk)> {
    let port = tree
        .ancestors(id)
        .into_iter()
        .find(|&a| tree.node(a).role == Role::RootPort)?;
    let f = &tree.node(port).facts;
    let (vendor, device) = (f.vendor?, f.device?);
    let q = table
        .iter()
        .find(|q| q.vendor == vendor && q.devices.contains(&device))?;
    Some((port, q))
}

/// A physical function of a Mellanox/NVIDIA network or InfiniBand
/// controller: the NICs GPUDirect RDMA uses (SR-IOV VFs have the RO bit
/// reserved, PCIe r6.0 §9.3.5.4).
fn gpudirect_nic(tree: &Tree, id: NodeId) -> bool {
    let f = &tree.node(id).facts;
    f.vendor == Some(0x15b3) && f.physfn.is_none() && f.class.is_some_and(|c| c >> 16 == 0x02)
}

/// An NVIDIA GPU (display or 3D controller) anywhere in the tree.
fn has_nvidia_gpu(tree: &Tree) -> bool {
    tree.nodes
        .iter()
        .any(|n| n.facts.vendor == Some(0x10de) && n.facts.class.is_some_and(|c| c >> 16 == 0x03))
}

/// Functions of one thing (`key`) that sit below different upstream ports.
fn behind_different_ports(ctx: &Ctx, ids: &[NodeId]) -> bool {
    let parents: BTreeSet<Option<NodeId>> = ids.iter().map(|&i| ctx.tree.node(i).parent).collect();
    parents.len() > 1
}

/// P2P601: one device reachable through two upstream ports.
fn dual_path(ctx: &Ctx) -> Vec<Finding> {
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
    for (id, n) in tree.nodes_with_ids() {
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
    out
}

/// P2P602: allowed pairs through two or more switches.
fn cascaded(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
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
    out
}

/// P2P603, P2P604 and P2P605 (see the module comment for how they divide
/// the functions between them).
fn relaxed_ordering(ctx: &Ctx) -> Vec<Finding> {
    let tree = ctx.tree;
    let table = ro_quirks();
    let ro = |id: NodeId| tree.node(id).dev_ctl().map(|c| c.relaxed_ordering);
    let mut out = Vec::new();

    // P2P604: DMA-capable endpoints (pairs' ends, and every GPU, NIC or
    // accelerator: drivers do P2P on their own) below a quirked root port.
    let candidates: BTreeSet<NodeId> = ctx
        .pair_endpoints()
        .into_iter()
        .chain(tree.ids().filter(|&id| {
            let n = tree.node(id);
            n.role.is_endpoint() && n.facts.physfn.is_none() && p2p_class(tree, id)
        }))
        .collect();
    let mut quirked: BTreeSet<NodeId> = BTreeSet::new();
    let mut by_port: BTreeMap<NodeId, (Vec<NodeId>, &RoQuirk)> = BTreeMap::new();
    for &id in &candidates {
        if ro(id) != Some(true) {
            continue;
        }
        if let Some((port, q)) = quirked_root_port(tree, &table, id) {
            quirked.insert(id);
            by_port
                .entry(port)
                .or_insert_with(|| (Vec::new(), q))
                .0
                .push(id);
        }
    }
    for (port, (ids, q)) in by_port {
        let bdfs: Vec<Bdf> = ids.iter().map(|&i| ctx.bdf(i)).collect();
        let n = tree.node(port);
        let id = format!(
            "{:04x}:{:04x}",
            n.facts.vendor.unwrap_or(0),
            n.facts.device.unwrap_or(0)
        );
        let fixes: Vec<String> = bdfs
            .iter()
            .map(|b| format!("setpci -s {b} CAP_EXP+8.w=0000:0010"))
            .collect();
        out.push(
            RELAXED_QUIRKED_PORT
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    bdfs.iter().copied().chain([n.bdf()]),
                    format!(
                        "Relaxed Ordering is enabled on {} below root port {} ({id}, {}), which the kernel marks NO_RELAXED_ORDERING: {}. Linux {} and later clear this bit at boot on every function below such a port, so a driver or setpci set it again, or the kernel predates the quirk",
                        bdf_list(bdfs.iter().copied()),
                        n.bdf(),
                        q.name,
                        q.effect,
                        q.since,
                    ),
                )
                .fix(format!(
                    "Clear it ({}), and find what set it again: a module option that forces RO whatever the root port (the NVIDIA driver's NVreg_SetPCIERelaxedOrdering=2), or a setpci in a boot script",
                    fixes.join("; ")
                ))
                .evidence([format!("{}: {}", q.name, q.source)]),
        );
    }

    // P2P605: a GPUDirect RDMA NIC with RO off where no quirk asks for it.
    if has_nvidia_gpu(tree) {
        let off: Vec<NodeId> = tree
            .ids()
            .filter(|&id| gpudirect_nic(tree, id) && ro(id) == Some(false))
            .filter(|&id| quirked_root_port(tree, &table, id).is_none())
            .collect();
        if !off.is_empty() {
            let bdfs: Vec<Bdf> = off.iter().map(|&i| ctx.bdf(i)).collect();
            let fixes: Vec<String> = bdfs
                .iter()
                .map(|b| format!("setpci -s {b} CAP_EXP+8.w=0010:0010"))
                .collect();
            out.push(
                RELAXED_OFF_RDMA_NIC
                    .finding(
                        Severity::Info,
                        Status::Predicted,
                        bdfs.clone(),
                        format!(
                            "Relaxed Ordering is disabled on the GPUDirect RDMA {} {}, and no kernel quirk asks for that on {} root {}. The mlx5 driver marks memory keys relaxed (IBV_ACCESS_RELAXED_ORDERING, which NCCL requests by default: NCCL_IB_PCI_RELAXED_ORDERING=2) only when this bit is on, so the NIC's writes into GPU and host memory stay strictly ordered. How much that costs depends on the platform: NCCL's documentation says RO \"can greatly help the performance of InfiniBand networks in virtualized environments\", and mlx5's own measurement (ARM host, NIC on the remote NUMA node) went from 10 to 40 GB/s (TCP over a ConnectX-4 Lx); elsewhere the gain varies with the root complex",
                            if bdfs.len() == 1 { "NIC" } else { "NICs" },
                            bdf_list(bdfs.iter().copied()),
                            if bdfs.len() == 1 { "its" } else { "their" },
                            if bdfs.len() == 1 { "port" } else { "ports" },
                        ),
                    )
                    .fix(format!(
                        "Turn it on ({}; it returns to the firmware's setting at reset, so make it stick in the firmware setup or a boot script), then compare ib_write_bw or nccl-tests with it on and off",
                        fixes.join("; ")
                    ))
                    .evidence([
                        "linux: net/mlx5e \"Add support for PCI relaxed ordering\" and RDMA/mlx5 \"Set relaxed ordering when requested\" (RO used only when pcie_relaxed_ordering_enabled())".to_string(),
                        "NCCL user guide, Environment Variables: NCCL_IB_PCI_RELAXED_ORDERING (docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html)".to_string(),
                    ]),
            );
        }
    }

    // P2P603: RO on any other P2P endpoint.
    let relaxed: Vec<Bdf> = ctx
        .pair_endpoints()
        .into_iter()
        .filter(|&id| ro(id) == Some(true))
        .filter(|id| !quirked.contains(id) && !gpudirect_nic(tree, *id))
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
                        "Relaxed Ordering is enabled on {}: their writes may pass earlier writes; fine for data read after a completion, and no kernel quirk marks their root ports, but some root complexes mishandle relaxed P2P writes",
                        bdf_list(relaxed)
                    ),
                )
                .fix(format!(
                    "Nothing to change unless copies through the root complex show corruption; then clear it: setpci -s {first} CAP_EXP+8.w=0000:0010"
                )),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_ordering_table_parses_and_cites() {
        let t = ro_quirks();
        assert_eq!(t.len(), 3, "the three quirks.c blocks");
        let ids: usize = t.iter().map(|q| q.devices.len()).sum();
        assert_eq!(ids, 14 + 14 + 3);
        for q in &t {
            assert!(q.source.contains("quirks.c"), "{}", q.name);
            assert!(!q.effect.is_empty());
        }
        assert!(
            t.iter()
                .any(|q| q.vendor == 0x8086 && q.devices.contains(&0x6f08))
        );
        assert!(
            t.iter()
                .any(|q| q.vendor == 0x1022 && q.devices.contains(&0x1a02))
        );
    }
}
