//! IOMMU family: translation on host-bridge paths, shared groups.

use std::collections::BTreeMap;

use super::{
    Ctx, Family, Rule, RuleRef, bdf_list, group_pairs, minor_note, pair_matters, pairs_phrase,
    passthrough_by_cmdline,
};
use crate::diagnose::fix::{Fix, KernelParam};
use crate::diagnose::{Finding, MapType, Severity, Status};
use crate::pci::Bdf;
use crate::scan::iommu_debugfs::{DeviceTranslation, DmaTranslation};
use crate::topology::NodeId;

pub const TRANSLATES: RuleRef = RuleRef {
    id: "P2P501",
    name: "iommu-translates-p2p",
};
pub const GROUP_SHARED: RuleRef = RuleRef {
    id: "P2P502",
    name: "iommu-group-shared",
};
pub const TRANSLATES_PEERS: RuleRef = RuleRef {
    id: "P2P503",
    name: "iommu-translates-gpu-nic",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(TRANSLATES, Family::Iommu, translates),
    Rule::check(GROUP_SHARED, Family::Iommu, group_shared),
    Rule::check(TRANSLATES_PEERS, Family::Iommu, translates_peers),
];

/// GPUs and other display controllers, network and InfiniBand controllers,
/// processing accelerators and co-processors: the devices NCCL, GPUDirect
/// RDMA and GPUDirect Storage move data between, with their own drivers'
/// P2P rather than the kernel's P2PDMA.
fn gpu_nic_accelerator(class: Option<u32>) -> bool {
    class.is_some_and(|c| matches!(c >> 16, 0x02 | 0x03 | 0x12) || c >> 8 == 0x0b40)
}

/// Translating IOMMU domains on two or more GPUs, NICs or accelerators:
/// their peer DMA goes through the IOMMU (issue threads: AMD-Vi
/// IO_PAGE_FAULT and zeroed data, NCCL hangs; NVIDIA/nccl#304, #606).
fn translates_peers(ctx: &Ctx) -> Vec<Finding> {
    let mut through: Vec<(NodeId, Option<bool>)> = Vec::new();
    for id in ctx.tree.ids() {
        let n = ctx.tree.node(id);
        if !n.role.is_endpoint() || !gpu_nic_accelerator(n.facts.class) || n.facts.physfn.is_some()
        {
            continue;
        }
        match translated(ctx, id) {
            Some(false) => {}
            t => through.push((id, t)),
        }
    }
    let peers = ctx
        .tree
        .ids()
        .filter(|&i| {
            let n = ctx.tree.node(i);
            n.role.is_endpoint() && gpu_nic_accelerator(n.facts.class) && n.facts.physfn.is_none()
        })
        .count();
    // One device alone has no peer of these kinds to talk to.
    if through.is_empty() || peers < 2 {
        return Vec::new();
    }
    let unknown = through.iter().any(|(_, t)| t.is_none());
    let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, _) in &through {
        let f = &ctx.tree.node(*id).facts;
        let ty = f
            .iommu_group_type
            .clone()
            .or_else(|| {
                from_debugfs(ctx, *id)
                    .map(|(_, d)| format!("translated per the {} driver entry", d.unit))
            })
            .unwrap_or_else(|| "unknown domain type".to_string());
        let group = f
            .iommu_group
            .map(|g| format!("group {g}"))
            .unwrap_or_else(|| "no group".into());
        by_type
            .entry(ty)
            .or_default()
            .push(format!("{} ({group})", ctx.bdf(*id)));
    }
    let listed: Vec<String> = by_type
        .iter()
        .map(|(ty, devs)| format!("{ty}: {}", devs.join(", ")))
        .collect();
    let (first_group, first) = through
        .iter()
        .find_map(|(id, _)| Some((ctx.tree.node(*id).facts.iommu_group?, ctx.bdf(*id))))
        .unwrap_or((0, ctx.bdf(through[0].0)));
    vec![
        TRANSLATES_PEERS
            .finding(
                Severity::Warning,
                if unknown {
                    Status::Inconclusive
                } else {
                    Status::Predicted
                },
                through.iter().map(|(id, _)| ctx.bdf(*id)),
                format!(
                    "{} of the {peers} GPUs, NICs and accelerators DMA through a translating IOMMU domain ({}): their peer traffic (NCCL P2P, GPUDirect RDMA and Storage) is translated by the IOMMU, which needs the peer's BAR mapped in every group and the root complex to route translated P2P; where it does not, transfers fault (DMAR, AMD-Vi IO_PAGE_FAULT), hang or deliver zeros without an error",
                    through.len(),
                    listed.join("; ")
                ),
            )
            .fix(
                Fix::new(format!(
                    "Boot with {} (identity for every device the host owns), or switch a group at run time (Linux 5.11+) with the commands below, shown for group {first_group} ({first}; every device of the group must be unbound first); keep translation only for devices handed to VMs (vfio)",
                    passthrough(ctx)
                ))
                .param(passthrough(ctx))
                .commands(identity_commands(first, first_group)),
            )
            .evidence(through.iter().map(|(id, _)| translation_source(ctx, *id))),
    ]
}

/// The parameter that makes the host's DMA identity-mapped: `iommu=pt` on
/// x86 (Intel VT-d, AMD-Vi), `iommu.passthrough=1` on Arm SMMUs
/// (Documentation/admin-guide/kernel-parameters.txt).
fn passthrough(ctx: &Ctx) -> KernelParam {
    if ctx
        .tree
        .host
        .iommu_units
        .iter()
        .any(|u| u.kind == "arm-smmu")
    {
        KernelParam::new("iommu.passthrough", "1")
    } else {
        KernelParam::new("iommu", "pt")
    }
}

/// Switching one IOMMU group to identity at run time (Linux 5.11+,
/// Documentation/ABI/testing/sysfs-kernel-iommu_groups): unbind, write
/// the type, let the PCI core bind the driver again.
fn identity_commands(bdf: Bdf, group: u32) -> Vec<String> {
    vec![
        format!("echo {bdf} | sudo tee /sys/bus/pci/devices/{bdf}/driver/unbind"),
        format!("echo identity | sudo tee /sys/kernel/iommu_groups/{group}/type"),
        format!("echo {bdf} | sudo tee /sys/bus/pci/drivers_probe"),
    ]
}

/// The IOMMU driver's own entry for a device (debugfs), when it was read
/// and says something this reader knows.
fn from_debugfs<'a>(ctx: &'a Ctx, id: NodeId) -> Option<(&'a str, &'a DeviceTranslation)> {
    let dbg = ctx.tree.host.iommu_debugfs.as_ref()?;
    let d = dbg.device(ctx.bdf(id))?;
    (d.translation != DmaTranslation::Unknown).then_some((dbg.source.as_str(), d))
}

/// Where the translation state of `id` came from, for the evidence lines:
/// the driver's debugfs when it names the device, else the group's type.
fn translation_source(ctx: &Ctx, id: NodeId) -> String {
    let bdf = ctx.bdf(id);
    if let Some((source, d)) = from_debugfs(ctx, id) {
        return format!(
            "{bdf}: {} per the IOMMU driver ({}: {}, {source})",
            match d.translation {
                DmaTranslation::Identity => "identity",
                _ => "translated",
            },
            d.unit,
            d.detail
        );
    }
    let f = &ctx.tree.node(id).facts;
    match (f.iommu_group, f.iommu_group_type.as_deref()) {
        (Some(g), Some(t)) => {
            format!("{bdf}: group {g} default domain {t} (/sys/kernel/iommu_groups/{g}/type)")
        }
        (Some(g), None) => format!(
            "{bdf}: group {g}, domain type unreadable (no /sys/kernel/iommu_groups/{g}/type; the driver's debugfs was not readable)"
        ),
        (None, _) => format!("{bdf}: in no IOMMU group"),
    }
}

/// Some(true) when the client's DMA is translated, None when unknown. The
/// IOMMU driver's own per-device state (debugfs) wins over the group's
/// default domain type: it is what the hardware was told.
fn translated(ctx: &Ctx, client: NodeId) -> Option<bool> {
    if ctx.tree.host.iommu_units.is_empty() {
        // No IOMMU registered, or (an evidence file) no way to tell.
        return ctx.tree.host.sources.iommu_units.map(|_| false);
    }
    if let Some((_, d)) = from_debugfs(ctx, client) {
        return Some(d.translation == DmaTranslation::Translated);
    }
    let f = &ctx.tree.node(client).facts;
    match f.iommu_group_type.as_deref() {
        Some(t) if t.starts_with("DMA") => Some(true),
        Some(_) => Some(false),
        None if f.iommu_group.is_none() => Some(false), // not behind the IOMMU
        None if passthrough_by_cmdline(ctx.tree) => Some(false),
        None => None,
    }
}

/// P2P501: pairs through the host bridge whose client's DMA the IOMMU
/// translates (or may).
fn translates(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let thru = ctx
        .pairs
        .iter()
        .filter(|p| p.verdict().map_type == MapType::ThruHostBridge);
    let groups = group_pairs(thru, |p| {
        let t = translated(ctx, p.client_id());
        t.is_none_or(|t| t).then(|| {
            let domain = ctx.tree.node(p.client_id()).facts.iommu_group_type.clone();
            (!pair_matters(ctx.tree, p), t.is_none(), domain)
        })
    });
    let kind = ctx
        .tree
        .host
        .iommu_units
        .first()
        .map(|u| u.kind.clone())
        .unwrap_or_default();
    for ((minor, unknown, domain), pairs) in groups {
        // The clients' groups, each once.
        let mut clients: BTreeMap<u32, Vec<Bdf>> = BTreeMap::new();
        for p in &pairs {
            let g = ctx
                .tree
                .node(p.client_id())
                .facts
                .iommu_group
                .unwrap_or(u32::MAX);
            let list = clients.entry(g).or_default();
            if !list.contains(&p.client()) {
                list.push(p.client());
            }
        }
        let group_text: Vec<String> = clients
            .iter()
            .map(|(g, bdfs)| match g {
                &u32::MAX => format!("no group known ({})", bdf_list(bdfs.iter().copied())),
                g => format!("group {g} ({})", bdf_list(bdfs.iter().copied())),
            })
            .collect();
        let (status, what) = if unknown && ctx.tree.host.iommu_units.is_empty() {
            (
                Status::Inconclusive,
                "whether an IOMMU translates their DMA is not in the input (no IOMMU groups shown): it may".to_string(),
            )
        } else if unknown {
            (
                Status::Inconclusive,
                format!(
                    "an IOMMU ({kind}) is present but the domain type of the clients' IOMMU groups could not be read: it may translate ({})",
                    group_text.join(", ")
                ),
            )
        } else {
            (
                Status::Predicted,
                format!(
                    "the clients' IOMMU groups use a translating domain ({}): {}",
                    domain.as_deref().unwrap_or("DMA"),
                    group_text.join(", ")
                ),
            )
        };
        let (severity, note) = if minor {
            (Severity::Info, minor_note(ctx, &pairs))
        } else {
            (Severity::Warning, String::new())
        };
        let (first_group, first_client) = clients
            .iter()
            .next()
            .map(|(g, b)| (*g, b[0]))
            .unwrap_or((0, pairs[0].client()));
        out.push(
            TRANSLATES
                .finding(
                    severity,
                    status,
                    pairs.iter().flat_map(|p| [p.provider(), p.client()]),
                    format!(
                        "{} go through the host bridge and {what}. The kernel maps the provider's BAR with dma_map on the client, so the IOMMU must map MMIO and the root complex must route translated P2P; some platforms fault (DMAR, AMD-Vi IO_PAGE_FAULT) or deliver wrong data without an error.{note}",
                        pairs_phrase(&pairs),
                    ),
                )
                .fix(if first_group == u32::MAX {
                    Fix::new(format!(
                        "To know, add the output of the commands below to the paste (IOMMU groups and their domain types); if they translate, boot with {}",
                        passthrough(ctx)
                    ))
                    .command("sudo lspci -vvv")
                    .command("grep . /sys/kernel/iommu_groups/*/type")
                } else {
                    Fix::new(format!(
                        "Boot with {}, or switch each group to identity at run time with the commands below, shown for group {first_group} (every device of the group must be unbound first)",
                        passthrough(ctx)
                    ))
                    .param(passthrough(ctx))
                    .commands(identity_commands(first_client, first_group))
                })
                .evidence({
                    let mut clients: Vec<NodeId> = pairs.iter().map(|p| p.client_id()).collect();
                    clients.sort_unstable();
                    clients.dedup();
                    clients
                        .into_iter()
                        .map(|id| translation_source(ctx, id))
                        .collect::<Vec<_>>()
                }),
        );
    }

    out
}

/// P2P502: groups with a pair endpoint and other functions.
fn group_shared(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut members: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();
    for (id, n) in ctx.tree.nodes_with_ids() {
        if let Some(g) = n.facts.iommu_group {
            members.entry(g).or_default().push(id);
        }
    }
    let endpoints = ctx.pair_endpoints();
    for (g, ids) in &members {
        // Ports in a group are the normal case; two endpoints are not.
        let functions = ids
            .iter()
            .filter(|&&i| ctx.tree.node(i).role.is_endpoint())
            .count();
        if functions < 2 || !ids.iter().any(|i| endpoints.contains(i)) {
            continue;
        }
        let bdfs = ids.iter().map(|&i| ctx.bdf(i));
        // Sharing a group says nothing isolates them; where their pairs
        // actually go is the kernel's decision, which may still send them
        // through the root complex (ACS redirect on a bridge above).
        let detoured: Vec<String> = ctx
            .pairs
            .iter()
            .filter(|p| {
                p.provider() != p.client()
                    && ids.contains(&p.provider_id())
                    && ids.contains(&p.client_id())
                    && p.verdict().map_type != MapType::BusAddr
            })
            .map(|p| {
                format!(
                    "{} → {} ({})",
                    p.provider(),
                    p.client(),
                    p.verdict().map_type
                )
            })
            .collect();
        let what = if detoured.is_empty() {
            "nothing between them isolates their DMA (no ACS), which lets them do P2P directly and means VFIO can only assign them together".to_string()
        } else {
            format!(
                "nothing between the functions themselves isolates their DMA (no ACS on them), so VFIO can only assign them together; their P2P still goes where the kernel decides, and it does not turn around between them: {}",
                detoured.join(", ")
            )
        };
        out.push(
            GROUP_SHARED
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    bdfs.clone(),
                    format!("IOMMU group {g} holds {}: {what}", bdf_list(bdfs)),
                )
                .fix("Nothing to fix for P2P"),
        );
    }
    out
}
