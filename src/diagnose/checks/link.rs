//! Link family: the narrowest link on a path, degraded links, Max
//! Payload Size along a path, AER errors on path devices.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Ctx, Family, Rule, RuleRef, group_pairs, link_gbytes, own_link, pairs_phrase, path_links,
};
use crate::diagnose::matrix::DeviceKind;
use crate::diagnose::{Finding, MapType, Pair, Severity, Status};
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
pub const BELOW_CAPABILITY: RuleRef = RuleRef {
    id: "P2P705",
    name: "path-below-capability",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(BOTTLENECK, Family::Link, bottleneck),
    Rule::check(DEGRADED, Family::Link, degraded_links),
    Rule::check(MPS, Family::Link, max_payload),
    Rule::check(AER, Family::Link, aer),
    Rule::check(BELOW_CAPABILITY, Family::Link, below_capability),
];

/// P2P701: the narrowest link, when it is narrower than both ends.
fn bottleneck(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;

    // The narrowest link, when it is narrower than both ends.
    let allowed = ctx
        .pairs
        .iter()
        .filter(|p| p.verdict().map_type != MapType::NotSupported);
    let groups = group_pairs(allowed, |p: Pair<'_>| {
        let b = p.bottleneck()?;
        let ends = [
            own_link(tree, p.provider_id()),
            own_link(tree, p.client_id()),
        ];
        let narrower = ends.iter().all(|e| {
            e.as_ref()
                .is_some_and(|e| b.gbytes_per_s + 0.01 < e.gbytes_per_s)
        });
        narrower.then_some(b.bdf)
    });
    for (bdf, pairs) in groups {
        let b = pairs[0]
            .bottleneck()
            .clone()
            .unwrap_or_else(|| unreachable_bound(bdf));
        out.push(
            BOTTLENECK
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    std::iter::once(bdf).chain(pairs.iter().flat_map(|p| [p.provider(), p.client()])),
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
    out
}

/// P2P702: a link on a pair's path trained below what both ends can do.
fn degraded_links(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;
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
    }
    out
}

/// P2P704: AER errors on a function on a pair's path.
fn aer(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;
    for id in ctx.route_nodes() {
        let n = tree.node(id);
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
    out
}

/// P2P703: Max Payload Size along each path.
fn max_payload(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = ctx.tree;
    let mps = |id: NodeId| tree.node(id).dev_ctl().map(|c| c.max_payload);
    let mut by_route: BTreeMap<Vec<(Bdf, u16)>, Vec<Pair<'_>>> = BTreeMap::new();
    let sizes: BTreeSet<u16> = ctx.route_nodes().into_iter().filter_map(mps).collect();
    if sizes.len() < 2 {
        // One size everywhere: no path can differ.
        return out;
    }
    // The bridges' values, once per path (the same for every pair on it).
    let inner: Vec<Vec<(NodeId, u16)>> = ctx
        .pairs
        .representatives()
        .map(|(a, b)| {
            let route = crate::diagnose::pairs::route(tree, a, b);
            route[1..route.len() - 1]
                .iter()
                .filter_map(|&id| Some((id, mps(id)?)))
                .collect()
        })
        .collect();
    for p in ctx.pairs {
        let (a, b) = (p.provider_id(), p.client_id());
        let mut values: Vec<(NodeId, u16)> = Vec::new();
        values.extend(mps(a).map(|m| (a, m)));
        values.extend(inner[p.path_id() as usize].iter().copied());
        values.extend(mps(b).map(|m| (b, m)));
        let Some(min) = values.iter().map(|v| v.1).min() else {
            continue;
        };
        let senders: Vec<(NodeId, u16)> = [p.provider_id(), p.client_id()]
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

/// What a function's own link can do by its Link Capabilities, GB/s.
fn capability(tree: &Tree, id: NodeId) -> Option<(f64, String)> {
    let l = tree.node(id).link.as_ref()?;
    let (s, w) = (l.max_speed_gts?, l.max_width?);
    (w > 0).then(|| (link_gbytes(s, w), format!("{} x{w}", generation(s))))
}

/// The pairs one narrow link bounds: the link, the pairs, and the most
/// their ends can do (GB/s and `Gen5 x16`).
type BelowGroup = (crate::diagnose::LinkBound, Vec<(Bdf, Bdf)>, f64, String);

/// P2P705: GPU and NIC paths (every two of them, whatever pairs this run
/// predicts: NCCL and GPUDirect choose their own) whose narrowest link
/// carries less than both devices' links can: a Gen5 GPU behind a Gen4
/// switch, a x16 NIC behind a x8 uplink.
fn below_capability(ctx: &Ctx) -> Vec<Finding> {
    let tree = ctx.tree;
    let devices: Vec<NodeId> = tree
        .ids()
        .filter(|&id| {
            let n = tree.node(id);
            n.role.is_endpoint()
                && n.facts.physfn.is_none()
                && !n.facts.missing
                && matches!(
                    DeviceKind::of_class(n.facts.class),
                    Some(DeviceKind::Gpu | DeviceKind::Nic)
                )
        })
        .collect();
    let mut groups: BTreeMap<Bdf, BelowGroup> = BTreeMap::new();
    for (i, &a) in devices.iter().enumerate() {
        for &b in &devices[i + 1..] {
            let (Some(narrowest), true) = path_links(tree, a, b) else {
                continue;
            };
            let (Some(ca), Some(cb)) = (capability(tree, a), capability(tree, b)) else {
                continue;
            };
            let can = if ca.0 <= cb.0 { ca } else { cb };
            if narrowest.gbytes_per_s + 0.05 >= can.0 {
                continue;
            }
            let e = groups
                .entry(narrowest.bdf)
                .or_insert_with(|| (narrowest.clone(), Vec::new(), 0.0, String::new()));
            e.1.push((ctx.bdf(a), ctx.bdf(b)));
            if can.0 > e.2 {
                e.2 = can.0;
                e.3 = can.1;
            }
        }
    }
    let mut out = Vec::new();
    for (bdf, (bound, pairs, can, can_link)) in groups {
        let id = tree.find(bdf);
        let role = id.map(|i| tree.node(i).role.label()).unwrap_or("link");
        let shown: Vec<String> = pairs
            .iter()
            .take(4)
            .map(|(a, b)| format!("{a} ↔ {b}"))
            .collect();
        let more = if pairs.len() > 4 {
            format!(" and {} more", pairs.len() - 4)
        } else {
            String::new()
        };
        let cause = match id.and_then(|i| degraded(tree, i)) {
            Some(text) => format!("; that link {text} (P2P702)"),
            None => match id.and_then(|i| limiting_partner(tree, i)) {
                Some(text) => format!(": {text}"),
                None => match id.and_then(|i| capability(tree, i)) {
                    Some(c) if c.0 + 0.05 < can => {
                        format!(
                            ": {bdf} itself can do only {} (an older generation or a narrower width than the devices)",
                            c.1
                        )
                    }
                    _ => ": a link of an older generation or narrower width than the devices"
                        .to_string(),
                },
            },
        };
        out.push(
            BELOW_CAPABILITY
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    std::iter::once(bdf).chain(pairs.iter().flat_map(|&(a, b)| [a, b])),
                    format!(
                        "GPU/NIC {} {}{more}: bandwidth bound {:.1} GB/s, set by the {} link of {bdf} ({role}), where both devices' links can do up to {can:.1} GB/s ({can_link}){cause}",
                        if pairs.len() == 1 { "path" } else { "paths" },
                        shown.join(", "),
                        bound.gbytes_per_s,
                        bound.link,
                    ),
                )
                .fix("Put the devices below ports of their own generation and width (a Gen5 switch or root port for Gen5 GPUs), or count on the bound; check --format json gives bandwidth_bound for every pair"),
        );
    }
    out
}

/// `its other end, 0000:02:00.0 (switch downstream), can do only Gen4
/// x16`: when the port above a link caps it below what the function below
/// can do.
fn limiting_partner(tree: &Tree, id: NodeId) -> Option<String> {
    let n = tree.node(id);
    let parent = n.parent.filter(|&p| is_port(tree.node(p).role))?;
    let own = capability(tree, id)?;
    let theirs = capability(tree, parent)?;
    (theirs.0 + 0.05 < own.0).then(|| {
        let p = tree.node(parent);
        format!(
            "its other end, {} ({}), can do only {} where {} can do {}",
            p.bdf(),
            p.role.label(),
            theirs.1,
            n.bdf(),
            own.1
        )
    })
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
