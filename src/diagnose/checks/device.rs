//! Device family: drivers and bus mastering of the pair's devices.

use super::{Ctx, RuleRef, p2p_class};
use crate::diagnose::{Finding, Severity, Status};

pub const NO_DRIVER: RuleRef = RuleRef {
    id: "P2P801",
    name: "no-driver",
};
pub const BUS_MASTER: RuleRef = RuleRef {
    id: "P2P802",
    name: "bus-master-off",
};

pub(crate) fn check(ctx: &Ctx) -> Vec<Finding> {
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
                    .fix(format!(
                        "Load and bind its driver: modprobe <driver>; echo {} > /sys/bus/pci/drivers/<driver>/bind",
                        n.bdf()
                    )),
            );
        }
    }
    let clients: std::collections::BTreeSet<usize> =
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
