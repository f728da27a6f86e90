//! Host-bridge family: pairs whose traffic needs the root complex, and
//! whether the kernel trusts it.

use super::acs::host_bridge_reason;
use super::{
    Ctx, Family, Pass, PerPath, Rule, RuleRef, group_pairs, kernel_evidence, minor_note,
    pair_matters, pairs_phrase,
};
use crate::diagnose::p2pdma::{HostBridgeResult, Unknown};
use crate::diagnose::{Finding, MapType, Pair, Severity, Status};
use crate::topology::PathClass;

pub const NOT_WHITELISTED: RuleRef = RuleRef {
    id: "P2P401",
    name: "host-bridge-not-whitelisted",
};
pub const ROOT_COMPLEX: RuleRef = RuleRef {
    id: "P2P402",
    name: "root-complex-p2p",
};
pub const NODE: RuleRef = RuleRef {
    id: "P2P403",
    name: "crosses-host-bridges",
};
pub const SYS: RuleRef = RuleRef {
    id: "P2P404",
    name: "crosses-numa",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(NOT_WHITELISTED, Family::HostBridge, |ctx| {
        let mut out = Vec::new();
        not_whitelisted(ctx, &mut out);
        out
    }),
    Rule::check(ROOT_COMPLEX, Family::HostBridge, |ctx| {
        let mut out = Vec::new();
        admitted(ctx, &mut out);
        out
    }),
    Rule::pass(NODE, Family::HostBridge, &CLASSES),
    Rule::pass(SYS, Family::HostBridge, &CLASSES),
];

/// One grouping of the allowed pairs by path class: a group crosses
/// host bridges (NODE) or NUMA nodes (SYS), never both.
static CLASSES: Pass = Pass {
    run: |ctx| {
        let mut out = Vec::new();
        classes(ctx, &mut out);
        out
    },
    emits: &[NODE, SYS],
};

fn cpu_text(ctx: &Ctx) -> String {
    let cpu = &ctx.view.cpu;
    if !ctx.kernel.cpu_rule {
        return format!(
            "kernel {} predates cpu_supports_p2pdma() ({})",
            ctx.kernel.version, ctx.kernel.features.cpu_supports_p2pdma
        );
    }
    match (&cpu.vendor, cpu.family) {
        (Some(v), Some(f)) => {
            format!("the CPU ({v}, family 0x{f:x}) is not AMD family 0x17 or newer")
        }
        (Some(v), None) => format!("the CPU ({v}) is not AMD Zen"),
        _ => "the CPU vendor is unknown".to_string(),
    }
}

/// Newer kernels in the table that whitelist a host bridge this kernel does not.
fn newer_kernel_hint(ctx: &Ctx, p: Pair<'_>) -> Option<String> {
    let w = p.verdict().whitelist.as_ref()?;
    let mut hints = Vec::new();
    for c in &w.checks {
        if c.result != HostBridgeResult::NotListed {
            continue;
        }
        let Some(id) = &c.device_id else { continue };
        let (v, d) = id.split_once(':')?;
        let (v, d) = (
            u16::from_str_radix(v, 16).ok()?,
            u16::from_str_radix(d, 16).ok()?,
        );
        if let Some(e) = ctx
            .data
            .whitelist
            .iter()
            .filter(|e| e.vendor == v && e.device.matches(d))
            .find(|e| {
                e.since
                    .is_none_or(|s| ctx.kernel.version.series_cmp(&s).is_lt())
            })
        {
            hints.push(match (e.since, e.stable.first()) {
                (Some(since), Some(st)) => format!(
                    "kernel {since} and newer (and {st} and later {}.{}.y) whitelist {id} ({})",
                    st.major, st.minor, e.name
                ),
                (Some(since), None) => {
                    format!("kernel {since} and newer whitelist {id} ({})", e.name)
                }
                (None, _) => format!(
                    "{id} ({}) is whitelisted in linux-next only: no released kernel has it yet",
                    e.name
                ),
            });
        }
    }
    (!hints.is_empty()).then(|| hints.join("; "))
}

fn not_whitelisted(ctx: &Ctx, out: &mut Vec<Finding>) {
    let refused = ctx.pairs.iter().filter(|p| {
        p.verdict().map_type == MapType::NotSupported
            && p.verdict().acs_redirect.is_empty()
            && p.verdict().blocked_by.is_none()
    });
    // The key is everything the sentence says besides the pairs: pairs are
    // grouped only when the sentence is the same for each of them.
    // Everything but pair_matters is the path's: worked out once per path.
    let words = PerPath::new(ctx.pairs);
    let groups = group_pairs(refused, |p| {
        Some((
            !pair_matters(ctx.tree, p),
            words.get(p, |p| refused_words(ctx, p)),
        ))
    });
    for ((minor, words), pairs) in groups {
        let (uncertain, reason, where_, unknowns, fix) = (*words).clone();
        let status = if uncertain {
            Status::Inconclusive
        } else {
            Status::Predicted
        };
        let mut message = format!(
            "{} share no upstream bridge, so the traffic must turn around in the root complex {where_}; {reason}, and {}: the kernel refuses ({})",
            pairs_phrase(&pairs),
            cpu_text(ctx),
            MapType::NotSupported.kernel_name(),
        );
        if !unknowns.is_empty() {
            message.push_str(&format!("; not known for sure: {}", unknowns.join("; ")));
        }
        if ctx.kernel.assumed {
            message.push_str(&format!(
                " (kernel release unknown: the whitelist of kernel {} was assumed)",
                ctx.kernel.version
            ));
        }
        if minor {
            message.push('.');
            message.push_str(&minor_note(ctx, &pairs));
        }
        let severity = if minor {
            Severity::Info
        } else {
            Severity::Error
        };
        let evidence = kernel_evidence(&pairs);
        out.push(
            NOT_WHITELISTED
                .finding(
                    severity,
                    status,
                    pairs.iter().flat_map(|p| [p.provider(), p.client()]),
                    message,
                )
                .fix(fix)
                .evidence(evidence),
        );
    }
}

/// What P2P401's sentence says of a refused pair besides the pairs: whether
/// it is uncertain, why the kernel refuses, where the traffic turns, what
/// is not known, and the fix. The same for every pair on a path.
fn refused_words(ctx: &Ctx, p: Pair<'_>) -> (bool, String, String, Vec<String>, String) {
    let uncertain = p.verdict().unknown.iter().any(|u| {
        matches!(
            u,
            Unknown::FirstDeviceType { .. }
                | Unknown::FirstDeviceId { .. }
                | Unknown::Cpu
                | Unknown::KernelRelease
                | Unknown::Placement { .. }
        )
    });
    let same = p
        .verdict()
        .whitelist
        .as_ref()
        .is_some_and(|w| w.same_host_bridge);
    let where_ = if same {
        format!("below host bridge {}", p.verdict().host_bridges.join(", "))
    } else {
        format!(
            "across host bridges {}",
            p.verdict().host_bridges.join(" and ")
        )
    };
    let unknowns: Vec<String> = p
        .verdict()
        .unknown
        .iter()
        .filter(|u| !matches!(u, Unknown::Acs { .. }))
        .map(|u| u.to_string())
        .collect();
    let mut fix = "Put the provider and the client below one PCIe switch (or below one root port through a switch), so the traffic never reaches the root complex".to_string();
    if same {
        if let Some(h) = newer_kernel_hint(ctx, p) {
            fix.push_str(&format!("; or upgrade: {h}"));
        }
    } else if p.verdict().whitelist.as_ref().is_some_and(|w| {
        w.checks
            .iter()
            .any(|c| c.result == HostBridgeResult::NeedsSameHostBridge)
    }) {
        fix.push_str("; this root complex is whitelisted only within one host bridge: pick a provider below the client's host bridge");
    } else if let Some(h) = newer_kernel_hint(ctx, p) {
        fix.push_str(&format!("; or upgrade: {h}"));
    }
    (uncertain, host_bridge_reason(p), where_, unknowns, fix)
}

fn admitted(ctx: &Ctx, out: &mut Vec<Finding>) {
    let thru = ctx.pairs.iter().filter(|p| {
        p.verdict().map_type == MapType::ThruHostBridge && p.verdict().acs_redirect.is_empty()
    });
    let words = PerPath::new(ctx.pairs);
    let groups = group_pairs(thru, |p| {
        Some(words.get(p, |p| {
            let how = if p.verdict().cpu_rule {
                match (&ctx.view.cpu.vendor, ctx.view.cpu.family) {
                    (Some(v), Some(f)) => format!("cpu_supports_p2pdma() ({v} family 0x{f:x})"),
                    _ => "cpu_supports_p2pdma()".to_string(),
                }
            } else {
                let mut entries: Vec<String> = p
                    .verdict()
                    .whitelist
                    .iter()
                    .flat_map(|w| w.checks.iter())
                    .filter_map(|c| c.entry.as_ref().map(|e| format!("{} ({})", e.id(), e.name)))
                    .collect();
                entries.dedup();
                format!("the host-bridge whitelist: {}", entries.join(", "))
            };
            // The host bridges are part of the sentence: pairs through
            // different ones are different findings.
            (how, p.verdict().host_bridges.join(", "))
        }))
    });
    for (words, pairs) in groups {
        let (how, bridges) = (*words).clone();
        out.push(
            ROOT_COMPLEX
                .finding(
                    Severity::Info,
                    Status::Predicted,
                    pairs.iter().flat_map(|p| [p.provider(), p.client()]),
                    format!(
                        "{} go through the root complex ({bridges}), admitted by {how}, with ordinary DMA mappings; bandwidth and latency depend on the platform",
                        pairs_phrase(&pairs),
                    ),
                )
                .fix("Nothing to fix; for the best bandwidth place the pair below one PCIe switch"),
        );
    }
}

fn classes(ctx: &Ctx, out: &mut Vec<Finding>) {
    let allowed = ctx
        .pairs
        .iter()
        .filter(|p| p.verdict().map_type != MapType::NotSupported);
    let numa = |b| {
        ctx.tree
            .find(b)
            .and_then(|id| ctx.tree.node(id).facts.numa_node)
            .map(|n| format!("numa {n}"))
            .unwrap_or_else(|| "numa ?".into())
    };
    // The key carries the NUMA nodes and host bridges the sentence names.
    let groups = group_pairs(allowed, |p| match p.path_class() {
        PathClass::Node | PathClass::Sys => Some((
            !pair_matters(ctx.tree, p),
            p.path_class(),
            p.verdict().host_bridges.clone(),
            (p.path_class() == PathClass::Sys).then(|| (numa(p.provider()), numa(p.client()))),
        )),
        _ => None,
    });
    for ((minor, class, bridges, nodes), pairs) in groups {
        let (rule, what, fix) = if let Some((from, to)) = nodes.filter(|_| class == PathClass::Sys)
        {
            (
                SYS,
                format!("cross NUMA nodes ({from} → {to}) over the CPU interconnect (SYS)"),
                "Pick a provider on the client's NUMA node, below the same switch if possible",
            )
        } else {
            (
                NODE,
                format!("cross from {} (NODE)", bridges.join(" to ")),
                "Pick a provider below the client's host bridge, ideally below the same switch",
            )
        };
        let (severity, note) = if minor {
            (Severity::Info, minor_note(ctx, &pairs))
        } else {
            (Severity::Warning, String::new())
        };
        out.push(
            rule.finding(
                severity,
                Status::Predicted,
                pairs.iter().flat_map(|p| [p.provider(), p.client()]),
                format!(
                    "{} {what}: lower bandwidth and higher latency than below one host bridge.{note}",
                    pairs_phrase(&pairs),
                ),
            )
            .fix(fix),
        );
    }
}
