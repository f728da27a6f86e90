//! Device family: drivers and bus mastering of the pair's devices.

use super::{Ctx, Family, Rule, RuleRef, p2p_class};
use crate::diagnose::fix::Fix;
use crate::diagnose::{Finding, Severity, Status};
use crate::topology::{Node, NodeId};

/// Loading the driver that modules.alias names for the function's IDs
/// (scan::modalias), and letting the PCI core bind it (drivers_probe
/// binds whichever driver matches; Documentation/ABI/testing/sysfs-bus-pci).
fn driver_fix(ctx: &Ctx, n: &Node) -> Fix {
    let bdf = n.bdf();
    let probe = format!("echo {bdf} | sudo tee /sys/bus/pci/drivers_probe");
    match n.facts.driver_candidates.as_slice() {
        [first, rest @ ..] => {
            let others = if rest.is_empty() {
                String::new()
            } else {
                format!(" (modules.alias also names {})", rest.join(", "))
            };
            Fix::new(format!(
                "Load {first}, the module whose modules.alias patterns match its IDs{others}, and let the PCI core bind it; if it does not bind, dmesg says why its probe failed"
            ))
            .command(format!("sudo modprobe {first}"))
            .command(probe)
        }
        [] if ctx.tree.host.module_aliases.source.is_some() => Fix::new(
            "No module of this kernel claims its IDs (modules.alias): install the vendor's driver, then let the PCI core bind it",
        )
        .command(probe),
        [] => Fix::new(
            "Which module claims its IDs is unknown (no modules.alias was read for this kernel): load its driver, then let the PCI core bind it; modprobe prints which module matches its modalias",
        )
        .command(format!(
            "modprobe -R \"$(cat /sys/bus/pci/devices/{bdf}/modalias)\""
        ))
        .command(probe),
    }
}

pub const NO_DRIVER: RuleRef = RuleRef {
    id: "P2P801",
    name: "no-driver",
};
pub const BUS_MASTER: RuleRef = RuleRef {
    id: "P2P802",
    name: "bus-master-off",
};

/// The device family spans three files: this one, vendor.rs (P2P803,
/// P2P805) and bar.rs (P2P804).
pub(super) const RULES: &[Rule] = &[
    Rule::check(NO_DRIVER, Family::Device, no_driver),
    Rule::check(BUS_MASTER, Family::Device, bus_master),
    super::vendor::TOPOLOGY_RULE,
    super::bar::RULE,
    super::vendor::P2P_READ_RULE,
];

/// P2P801: a pair's device with no driver bound.
fn no_driver(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for id in ctx.pair_endpoints() {
        let n = ctx.tree.node(id);
        if n.facts.driver.is_none() {
            let (severity, note) = if p2p_class(ctx.tree, id) {
                (Severity::Warning, "")
            } else {
                (
                    Severity::Info,
                    " (reported as info: its class rarely does P2P DMA)",
                )
            };
            out.push(
                NO_DRIVER
                    .finding(
                        severity,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "{} ({}) has no driver bound: nothing programs its DMA{note}",
                            n.bdf(),
                            n.name()
                        ),
                    )
                    .fix(driver_fix(ctx, n)),
            );
        }
    }
    out
}

/// P2P802: a client with Bus Master Enable off.
fn bus_master(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let clients: std::collections::BTreeSet<NodeId> =
        ctx.pairs.iter().map(|p| p.client_id()).collect();
    for id in clients {
        let n = ctx.tree.node(id);
        if n.caps.bus_master() == Some(false) {
            out.push(
                BUS_MASTER
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "{} has Bus Master Enable off: it cannot issue the memory requests a P2P copy needs",
                            n.bdf()
                        ),
                    )
                    .fix("Bind its driver (it enables bus mastering with pci_set_master()), or find out why the driver's probe failed (dmesg)"),
            );
        }
    }
    out
}
