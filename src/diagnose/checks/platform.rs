//! Platform family: what the machine under the kernel is.

use super::{Ctx, RuleRef};
use crate::diagnose::{Finding, Severity, Status};

pub const VIRTUAL_MACHINE: RuleRef = RuleRef {
    id: "P2P110",
    name: "virtual-machine",
};

pub(crate) fn check(ctx: &Ctx) -> Vec<Finding> {
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
