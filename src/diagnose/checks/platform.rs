//! Platform family: what the machine under the kernel is.

use serde::Deserialize;

use super::{Ctx, Family, Rule, RuleRef, bdf_list, p2p_class};
use crate::diagnose::{Finding, Severity, Status};
use crate::pci::Bdf;

pub const VIRTUAL_MACHINE: RuleRef = RuleRef {
    id: "P2P110",
    name: "virtual-machine",
};

pub const WRITES_ONLY: RuleRef = RuleRef {
    id: "P2P111",
    name: "root-complex-writes-only",
};

/// One entry of rules/platforms.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Platform {
    pub name: String,
    pub vendor: String,
    pub family: u32,
    pub models: Vec<u32>,
    /// `writes`: only P2P memory writes cross the root complex.
    pub forwards: String,
    pub source: String,
}

#[derive(Deserialize)]
struct Table {
    platform: Vec<Platform>,
}

const PLATFORMS: &str = include_str!("../../../rules/platforms.toml");

/// The embedded platform table (checked by a unit test).
pub(crate) fn platforms() -> Vec<Platform> {
    toml::from_str::<Table>(PLATFORMS)
        .map(|t| t.platform)
        .unwrap_or_default()
}

pub(super) const RULES: &[Rule] = &[
    Rule::check(VIRTUAL_MACHINE, Family::Platform, virtual_machine),
    Rule::check(WRITES_ONLY, Family::Platform, writes_only),
];

/// Pairs through a root complex that forwards only P2P writes.
fn writes_only(ctx: &Ctx) -> Vec<Finding> {
    let cpu = &ctx.tree.host.cpu;
    let (Some(vendor), Some(family), Some(model)) = (&cpu.vendor, cpu.family, cpu.model) else {
        return Vec::new();
    };
    let table = platforms();
    let Some(platform) = table
        .iter()
        .find(|p| p.vendor == *vendor && p.family == family && p.models.contains(&model))
    else {
        return Vec::new();
    };
    // Devices that do P2P (GPUs, NICs, NVMe, accelerators) below
    // different root ports reach each other only through the root complex,
    // whatever pairs this run predicts: GPU drivers (GPUDirect, dma-buf
    // exporters) decide for themselves, on the same hardware.
    let mut by_port: std::collections::BTreeMap<crate::topology::NodeId, Vec<Bdf>> =
        Default::default();
    for id in ctx.tree.ids() {
        if !crate::diagnose::dma_capable(ctx.tree, id) || !p2p_class(ctx.tree, id) {
            continue;
        }
        let top = ctx.tree.ancestors(id).last().copied().unwrap_or(id);
        by_port.entry(top).or_default().push(ctx.bdf(id));
    }
    if by_port.len() < 2 || platform.forwards != "writes" {
        return Vec::new();
    }
    let groups: Vec<String> = by_port
        .iter()
        .map(|(&port, devs)| format!("{} below {}", bdf_list(devs.iter().copied()), ctx.bdf(port)))
        .collect();
    let model_name = cpu.model_name.as_deref().unwrap_or("this CPU");
    vec![
        WRITES_ONLY
            .finding(
                Severity::Warning,
                Status::Predicted,
                by_port.values().flatten().copied(),
                format!(
                    "{model_name} ({}, family {family:#x} model {model:#x}) has a root complex that forwards P2P memory writes between its root ports but not reads, and the devices that do P2P sit below {} different root ports ({}): a device reading its peer's memory across them (GPUDirect RDMA reads from GPU memory, an NVMe writing out of a peer's P2P memory) fails, while writes into the peer work",
                    platform.name,
                    by_port.len(),
                    groups.join("; ")
                ),
            )
            .fix(
                "Put the devices that read from each other below one PCIe switch, or use a protocol that only writes to the peer (for NCCL, keep P2P reads off: NCCL_P2P_READ_ENABLE=0); a server platform's root complex forwards both",
            )
            .evidence([format!("source: {}", platform.source)]),
    ]
}

fn virtual_machine(ctx: &Ctx) -> Vec<Finding> {
    let Some(v) = &ctx.tree.host.virtualization else {
        return Vec::new();
    };
    let pairs = ctx.pairs.len();
    vec![
        VIRTUAL_MACHINE
            .finding(
                Severity::Warning,
                Status::Predicted,
                [],
                format!(
                    "This kernel runs in a virtual machine ({}): the PCI tree it sees is the hypervisor's. The {pairs} {} predicted here are what this guest's kernel will decide, but path classes, switches, ACS bits and NUMA placement say nothing about the physical PCIe paths below: two devices that look side by side here may sit on different sockets of the host, and whether their peer traffic works depends on the host (its ACS and IOMMU settings, the hypervisor's P2P support, ATS)",
                    v.hypervisor,
                    if pairs == 1 { "verdict" } else { "verdicts" }
                ),
            )
            .fix(
                "Run p2pdoctor on the host (or ask the provider for its topology) to judge the physical paths. Inside the guest, prefer devices passed through together with their upstream switch, keep the guest's IOMMU (vIOMMU) off or in passthrough for P2P, and check with a real transfer: p2pdoctor check --confirm",
            )
            .evidence(v.evidence.iter().cloned()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_platform_table_parses() {
        let t = super::platforms();
        assert!(!t.is_empty());
        assert!(
            t.iter()
                .all(|p| !p.source.is_empty() && p.forwards == "writes")
        );
        // Arrow Lake-S, the platform of the report the entry cites.
        assert!(t[0].models.contains(&0xc6));
    }
}
