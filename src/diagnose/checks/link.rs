//! Link family: the narrowest link on a path, degraded links, Max
//! Payload Size along a path, AER errors on path devices.

use std::collections::BTreeMap;

use super::{Ctx, RuleRef, group_pairs, own_link, pairs_phrase};
use crate::diagnose::{Finding, MapType, PairReport, Severity, Status};
use crate::pci::Bdf;
use crate::topology::{LinkState, NodeId, Role, Tree};

pub const BOTTLENECK: RuleRef = RuleRef {
    id: "P2P701",
    name: "path-bottleneck",
};
pub const DEGRADED: RuleRef = RuleRef {
    id: "P2P702",
    name: "degraded-link",
};
pub const MPS: RuleRef = RuleRef {
    id: "P2P703",
    name: "mps-mismatch",
};
pub const AER: RuleRef = RuleRef {
    id: "P2P704",
    name: "aer-errors",
};

pub(crate) fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;

    // The narrowest link, when it is narrower than both ends.
    let allowed = ctx
        .pairs
        .iter()
        .filter(|p| p.verdict.map_type != MapType::NotSupported);
    let groups = group_pairs(allowed, |p: &PairReport| {
        let b = p.bottleneck.as_ref()?;
        let ends = [own_link(tree, p.provider_id), own_link(tree, p.client_id)];
        let narrower = ends.iter().all(|e| {
            e.as_ref()
                .is_some_and(|e| b.gbytes_per_s + 0.01 < e.gbytes_per_s)
        });
        narrower.then_some(b.bdf)
    });
    for (bdf, pairs) in groups {
        let b = pairs[0]
            .bottleneck
            .clone()
            .unwrap_or_else(|| unreachable_bound(bdf));
        out.push(
            BOTTLENECK
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    std::iter::once(bdf).chain(pairs.iter().flat_map(|p| [p.provider, p.client])),
                    format!(
                        "{} are capped at {} by the {} link of {bdf}, narrower than both devices' own links",
                        pairs_phrase(&pairs),
                        crate::units::rate(b.gbytes_per_s),
                        b.link
                    ),
                )
                .fix("Place the pair where its path does not cross that link, or widen the link (slot, riser, bifurcation setting)"),
        );
    }

    let route = ctx.route_nodes();
    for &id in &route {
        let n = tree.node(id);
        // One link, two ends: report it once, on the device below.
        let reported_below = is_port(n.role)
            && n.children
                .iter()
                .any(|c| route.contains(c) && tree.node(*c).link.is_some());
        if !reported_below && let Some(text) = degraded(tree, id) {
            out.push(
                DEGRADED
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "the link of {} ({}) {text}: every pair whose path crosses it is slower than it could be",
                            n.bdf(),
                            n.role.label(),
                        ),
                    )
                    .fix("Reseat the device, check the slot wiring and the BIOS link-speed setting; a reboot retrains the link"),
            );
        }
        if let Some(aer) = &n.caps.aer {
            let unc = aer.uncorrectable_status & !aer.uncorrectable_mask;
            let cor = aer.correctable_status & !aer.correctable_mask;
            if unc != 0 || cor != 0 {
                let mut what = Vec::new();
                if unc != 0 {
                    what.push(format!(
                        "uncorrectable: {}",
                        crate::pci::Aer::uncorrectable_names(unc)
                    ));
                }
                if cor != 0 {
                    what.push(format!(
                        "correctable: {}",
                        crate::pci::Aer::correctable_names(cor)
                    ));
                }
                let severity = Severity::Warning;
                out.push(
                    AER.finding(
                        severity,
                        Status::Predicted,
                        [n.bdf()],
                        format!(
                            "{} on a P2P path reports AER errors ({}): retried or dropped TLPs make copies slow or wrong",
                            n.bdf(),
                            what.join("; ")
                        ),
                    )
                    .fix(format!(
                        "Clear the status (setpci -s {0} ECAP_AER+4.l=ffffffff; setpci -s {0} ECAP_AER+10.l=ffffffff) and watch whether it returns during a copy; reseat or replace the device, riser or cable",
                        n.bdf()
                    )),
                );
            }
        }
    }

    // Max Payload Size along each path.
    let mps = |id: NodeId| tree.node(id).dev_ctl().map(|c| c.max_payload);
    let mut by_route: BTreeMap<Vec<(Bdf, u16)>, Vec<&PairReport>> = BTreeMap::new();
    for p in ctx.pairs {
        let values: Vec<(NodeId, u16)> = p
            .route
            .iter()
            .filter_map(|&id| Some((id, mps(id)?)))
            .collect();
        let Some(min) = values.iter().map(|v| v.1).min() else {
            continue;
        };
        let senders: Vec<(NodeId, u16)> = [p.provider_id, p.client_id]
            .iter()
            .filter_map(|&e| Some((e, mps(e)?)))
            .filter(|&(_, m)| m > min)
            .collect();
        if senders.is_empty() {
            continue;
        }
        let mut key: Vec<(Bdf, u16)> = values.iter().map(|&(id, m)| (ctx.bdf(id), m)).collect();
        key.sort_unstable();
        by_route.entry(key).or_default().push(p);
    }
    for (values, pairs) in by_route {
        let min = values.iter().map(|v| v.1).min().unwrap_or(128);
        let big: Vec<String> = values
            .iter()
            .filter(|v| v.1 > min)
            .map(|(b, m)| format!("{b} {m} B"))
            .collect();
        let small: Vec<String> = values
            .iter()
            .filter(|v| v.1 == min)
            .map(|(b, _)| b.to_string())
            .collect();
        out.push(
            MPS.finding(
                Severity::Warning,
                Status::Predicted,
                values.iter().map(|v| v.0),
                format!(
                    "Max Payload Size differs along the path of {}: {} may send TLPs larger than the {min} B that {} accept; an oversized TLP is a Malformed TLP error",
                    pairs_phrase(&pairs),
                    big.join(", "),
                    small.join(", ")
                ),
            )
            .fix("Boot with pci=pcie_bus_peer2peer (128 B everywhere, made for P2P) or pci=pcie_bus_safe, or lower the endpoints' MPS with setpci (CAP_EXP+8.w bits 7:5)"),
        );
    }
    out
}

fn is_port(role: Role) -> bool {
    matches!(
        role,
        Role::RootPort | Role::SwitchDownstreamPort | Role::PciToPcieBridge
    )
}

fn generation(speed: f64) -> String {
    LinkState::generation(speed)
        .map(|g| format!("Gen{g}"))
        .unwrap_or_else(|| format!("{speed} GT/s"))
}

/// A link that trained below what *both* ends can do (a port's Link
/// Capabilities alone overstate it: a x16 root port with a x4 device is
/// not degraded). Returns `runs at Gen1 x4; both ends can do Gen3 x4`.
fn degraded(tree: &Tree, id: NodeId) -> Option<String> {
    let n = tree.node(id);
    let l = n.link.as_ref()?;
    if !l.is_up() {
        return None;
    }
    let (speed, width) = (l.speed_gts?, l.width?);
    // The other end: the functions below a port, or the port above.
    let partners: Vec<NodeId> = if is_port(n.role) {
        n.children.clone()
    } else {
        n.parent
            .filter(|&p| is_port(tree.node(p).role))
            .into_iter()
            .collect()
    };
    let caps = |ids: &[NodeId]| {
        let links: Vec<&LinkState> = ids
            .iter()
            .filter_map(|&i| tree.node(i).link.as_ref())
            .collect();
        let s = links
            .iter()
            .filter_map(|l| l.max_speed_gts)
            .reduce(f64::max);
        let w = links.iter().filter_map(|l| l.max_width).max();
        (s, w)
    };
    let (own_s, own_w) = (l.max_speed_gts?, l.max_width?);
    let (ps, pw) = caps(&partners);
    let can_s = ps.map_or(own_s, |p| p.min(own_s));
    let can_w = pw.map_or(own_w, |p| p.min(own_w));
    (speed + 0.01 < can_s || width < can_w).then(|| {
        format!(
            "runs at {} x{width}; {} can do {} x{can_w}",
            generation(speed),
            if partners.is_empty() {
                "it"
            } else {
                "both ends"
            },
            generation(can_s)
        )
    })
}

fn unreachable_bound(bdf: Bdf) -> crate::diagnose::LinkBound {
    crate::diagnose::LinkBound {
        bdf,
        link: "?".into(),
        gbytes_per_s: 0.0,
    }
}
