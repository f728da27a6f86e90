//! ACS family: redirect on the path, ordering hazards of mixed ACS
//! settings, and kernel parameters that do not do what they say.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Ctx, Family, Pass, PerPath, Rule, RuleRef, bdf_list, group_pairs, kernel_evidence, minor_note,
    pair_list, pair_matters, pairs_phrase, plural,
};
use crate::diagnose::acs_params::{DeviceIdent, ParamError, match_param};
use crate::diagnose::fix::{Fix, KernelParam};
use crate::diagnose::p2pdma::{AcsState, Unknown};
use crate::diagnose::{Finding, MapType, Pair, Severity, Status};
use crate::pci::{AcsFlags, Bdf};
use crate::topology::NodeId;

pub const REDIRECT: RuleRef = RuleRef {
    id: "P2P301",
    name: "acs-redirect",
};
pub const RR_WITHOUT_CR: RuleRef = RuleRef {
    id: "P2P302",
    name: "acs-rr-without-cr",
};
pub const DT_WITH_ATS: RuleRef = RuleRef {
    id: "P2P303",
    name: "acs-dt-with-ats",
};
pub const EGRESS: RuleRef = RuleRef {
    id: "P2P304",
    name: "acs-egress-control",
};
pub const PARAM: RuleRef = RuleRef {
    id: "P2P305",
    name: "acs-param-ineffective",
};
pub const DRIFT: RuleRef = RuleRef {
    id: "P2P306",
    name: "acs-changed-since-boot",
};

/// What undoes a run-time ACS change, and what it does not reach; said
/// wherever setpci is suggested.
pub(crate) const SETPCI_CAVEAT: &str = "a setpci change lasts only until pci_restore_state() runs for that device (after an FLR, a secondary bus reset, AER recovery, resume from suspend), which re-applies Linux's own ACS settings (pci_enable_acs()); and a pair whose verdict the kernel already computed keeps it (cached on the provider) until the provider's driver is unbound (pci_p2pdma_release())";

const REDIR: u16 = 0x2c; // RR | CR | EC

pub(super) const RULES: &[Rule] = &[
    Rule::check(REDIRECT, Family::Acs, |ctx| {
        let mut out = Vec::new();
        redirect(ctx, &mut out);
        redirect_unknown(ctx, &mut out);
        out
    }),
    Rule::pass(RR_WITHOUT_CR, Family::Acs, &ORDERING),
    Rule::pass(DT_WITH_ATS, Family::Acs, &ORDERING),
    Rule::pass(EGRESS, Family::Acs, &ORDERING),
    Rule::check(PARAM, Family::Acs, |ctx| {
        let mut out = Vec::new();
        params(ctx, &mut out);
        out
    }),
    Rule::check(DRIFT, Family::Acs, |ctx| {
        let mut out = Vec::new();
        drift(ctx, &mut out);
        out
    }),
];

/// One walk over the bridges on the pairs' paths whose ACS Control can
/// reorder, and the pairs that cross each.
static ORDERING: Pass = Pass {
    run: |ctx| {
        let mut out = Vec::new();
        ordering(ctx, &mut out);
        out
    },
    emits: &[RR_WITHOUT_CR, DT_WITH_ATS, EGRESS],
};

/// P2P306: ACS Control values that differ from what Linux set at boot
/// for this IOMMU state and command line. pci_enable_acs(): with an
/// IOMMU (pci_acs_enable, set by pci_request_acs()) pci_std_enable_acs()
/// ORs SV, RR, CR and UF into the firmware value where the capability
/// offers them; then pci=disable_acs_redir= clears RR, CR and EC and
/// pci=config_acs= (6.11+) forces its masked bits. Linux never clears a
/// bit otherwise, so without an IOMMU and without a parameter nothing can
/// be told. Ports with a device-specific ACS quirk keep their real control
/// elsewhere (Intel SPT/Union Point: a dword at +8) and are skipped.
fn drift(ctx: &Ctx, out: &mut Vec<Finding>) {
    let iommu = !ctx.tree.host.iommu_units.is_empty();
    for (id, node) in ctx.tree.nodes_with_ids() {
        let Some(acs) = &node.caps.acs else { continue };
        let Some(ctrl) = acs.ctrl else { continue };
        if crate::diagnose::p2pdma::intel_pch_acs_quirk(
            node.facts.vendor.unwrap_or(0),
            node.facts.device.unwrap_or(0),
            node.role == crate::topology::Role::RootPort,
        )
        .is_some()
        {
            continue;
        }
        let effect = ctx.effects.get(id.index()).cloned().unwrap_or_default();
        let std_bits = AcsFlags::SV.0 | AcsFlags::RR.0 | AcsFlags::CR.0 | AcsFlags::UF.0;
        let mut must_set: u16 = if iommu { acs.cap.0 & std_bits } else { 0 };
        let mut must_clear: u16 = 0;
        if effect.disable_acs_redir.is_some() {
            must_set &= !REDIR;
            must_clear |= REDIR;
        }
        if let Some((_, mask, flags)) = effect.config_acs.filter(|_| ctx.kernel.config_acs) {
            must_set = (must_set & !mask) | (flags & mask);
            must_clear = (must_clear & !mask) | (!flags & mask);
        }
        let missing = AcsFlags(must_set & !ctrl.0);
        let extra = AcsFlags(ctrl.0 & must_clear);
        if missing.0 == 0 && extra.0 == 0 {
            continue;
        }
        let bdf = node.bdf();
        let mut what = Vec::new();
        if missing.0 != 0 {
            what.push(format!(
                "{} clear although Linux sets {} at boot ({})",
                missing.names().join(" "),
                if missing.names().len() == 1 {
                    "it"
                } else {
                    "them"
                },
                if effect.config_acs.is_some() && ctx.kernel.config_acs {
                    "pci=config_acs= names it"
                } else {
                    "an IOMMU is active: pci_std_enable_acs() sets SV RR CR UF where offered"
                }
            ));
        }
        if extra.0 != 0 {
            what.push(format!(
                "{} set although the command line clears {} at boot",
                extra.names().join(" "),
                if extra.names().len() == 1 {
                    "it"
                } else {
                    "them"
                }
            ));
        }
        let p2p = (missing.0 | extra.0) & REDIR != 0;
        let boot = AcsFlags((ctrl.0 | must_set) & !must_clear);
        out.push(
            DRIFT
                .finding(
                    if p2p { Severity::Warning } else { Severity::Info },
                    Status::Predicted,
                    [bdf],
                    format!(
                        "{bdf}: {} differs from what Linux set at boot: {}. Someone changed it at run time (setpci) or a reset restored firmware values; P2PDMA reads the live register, so today's verdicts follow it, but {SETPCI_CAVEAT}",
                        describe_ctrl(ctrl),
                        what.join("; ")
                    ),
                )
                .fix(
                    Fix::new(format!(
                        "Make the intended setting durable on the kernel command line (pci=disable_acs_redir={bdf} clears RR CR EC at every boot and every restore); after a run-time change, unbind and rebind the provider's driver so cached verdicts are recomputed"
                    ))
                    .param(KernelParam::new("pci", format!("disable_acs_redir={bdf}"))),
                )
                .evidence([format!(
                    "{bdf}: ACS Capability {:#06x}; Linux's value for this IOMMU state and command line: {}",
                    acs.cap.0,
                    describe_ctrl(boot)
                )]),
        );
    }
}

fn ctrl_of(ctx: &Ctx, bdf: Bdf) -> Option<AcsFlags> {
    ctx.view
        .find(bdf)
        .and_then(|i| ctx.view.functions[i].acs.ctrl())
}

fn describe_ctrl(ctrl: AcsFlags) -> String {
    let names = ctrl.names();
    format!(
        "ACS Control {:#06x} ({})",
        ctrl.0,
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(" ")
        }
    )
}

/// The `pci=disable_acs_redir=` value that keeps what the command line
/// already has and adds `bridges` (one parameter: a second one would
/// replace the first).
/// `pci=X` as a [`KernelParam`] (`param` starts with `pci=`).
fn pci_param(param: &str) -> KernelParam {
    KernelParam::new("pci", param.strip_prefix("pci=").unwrap_or(param))
}

fn merged_param(ctx: &Ctx, bridges: &[Bdf]) -> String {
    let mut entries: Vec<String> = ctx
        .params
        .disable_acs_redir
        .as_deref()
        .map(|p| {
            p.split(';')
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for b in bridges {
        let already = ctx
            .view
            .find(*b)
            .is_some_and(|i| ctx.effects[i].disable_acs_redir.is_some());
        let s = b.to_string();
        if !already && !entries.contains(&s) {
            entries.push(s);
        }
    }
    format!("pci=disable_acs_redir={}", entries.join(";"))
}

fn redirect(ctx: &Ctx, out: &mut Vec<Finding>) {
    let iommu = !ctx.tree.host.iommu_units.is_empty();
    let outcomes = PerPath::new(ctx.pairs);
    let groups = group_pairs(ctx.pairs, |p| {
        // One finding per outcome: the fix is one kernel parameter anyway.
        // A client that cannot map P2P memory at all is P2P103's.
        if p.verdict().acs_redirect.is_empty() || p.verdict().blocked_by.is_some() {
            return None;
        }
        // The outcome is part of the sentence: the reason a pair is
        // refused, or what admits it, is the same for the whole group.
        let refused = p.verdict().map_type == MapType::NotSupported;
        let outcome = outcomes.get(p, |p| {
        if refused {
            format!("{}: the kernel refuses", host_bridge_reason(p))
        } else {
            let how = if p.verdict().cpu_rule {
                "admitted by cpu_supports_p2pdma() (AMD Zen)"
            } else {
                "admitted by the host-bridge whitelist"
            };
            format!(
                "the kernel allows the detour ({how}), at root-complex bandwidth and through the IOMMU when one translates"
            )
        }
        });
        Some((!pair_matters(ctx.tree, p), !refused, outcome))
    });
    for ((minor, _, outcome), pairs) in groups {
        // The bridges in the kernel's order for the first pair, then any
        // others the group adds.
        let mut bridges: Vec<Bdf> = Vec::new();
        for p in &pairs {
            for b in &p.verdict().acs_redirect {
                if !bridges.contains(b) {
                    bridges.push(*b);
                }
            }
        }
        let refused: Vec<&Pair<'_>> = pairs
            .iter()
            .filter(|p| p.verdict().map_type == MapType::NotSupported)
            .collect();
        let severity = if minor {
            Severity::Info
        } else if refused.is_empty() {
            Severity::Warning
        } else {
            Severity::Error
        };
        const SHOWN: usize = 6;
        let mut bridge_text: Vec<String> = bridges
            .iter()
            .take(SHOWN)
            .map(|b| match ctrl_of(ctx, *b) {
                Some(c) => format!("{b} ({})", c.names().join(" ")),
                None => b.to_string(),
            })
            .collect();
        if bridges.len() > SHOWN {
            bridge_text.push(format!("and {} more", bridges.len() - SHOWN));
        }
        let all_std = bridges
            .iter()
            .all(|b| ctrl_of(ctx, *b).is_some_and(|c| c.0 & 0x0c == 0x0c && c.0 & 0x60 == 0));
        let cause = if iommu && all_std {
            " Linux sets RR and CR itself when firmware describes an IOMMU (pci_request_acs()); the BIOS may also have."
        } else if !iommu {
            " No IOMMU is registered, so these bits come from the firmware (BIOS), not from Linux."
        } else {
            ""
        };
        let mut message = format!(
            "ACS redirect on {} sends {} through the root complex; {outcome}.{cause}",
            bridge_text.join(", "),
            pairs_phrase(&pairs),
        );
        if minor {
            message.push_str(&minor_note(ctx, &pairs));
        }
        let mut evidence = kernel_evidence(&pairs);
        for b in &bridges {
            if let Some(c) = ctrl_of(ctx, *b) {
                evidence.push(format!("{b}: {}", describe_ctrl(c)));
            }
        }
        let param = merged_param(ctx, &bridges);
        let mut text = format!(
            "Add the kernel parameter {param} (this exact list; a second pci=disable_acs_redir= would replace the first)"
        );
        // Many ports of one model: the ID form names them all at once.
        if bridges.len() > 4 {
            let mut ids: Vec<String> = Vec::new();
            for b in &bridges {
                if let Some(id) = ctx.tree.find(*b) {
                    let f = &ctx.tree.node(id).facts;
                    let s = format!(
                        "pci:{:04x}:{:04x}",
                        f.vendor.unwrap_or(0xffff),
                        f.device.unwrap_or(0xffff)
                    );
                    if !ids.contains(&s) {
                        ids.push(s);
                    }
                }
            }
            if ids.len() < bridges.len() {
                text.push_str(&format!(
                    "; shorter, by device ID (every device of those models, here and elsewhere): pci=disable_acs_redir={}",
                    ids.join(";")
                ));
            }
        }
        let setpci: Vec<String> = bridges
            .iter()
            .filter(|b| ctrl_of(ctx, **b).is_some())
            .take(SHOWN)
            .map(|b| format!("sudo setpci -s {b} ECAP_ACS+6.w=0000:{REDIR:04x}"))
            .collect();
        if !setpci.is_empty() {
            let more = bridges.len().saturating_sub(setpci.len());
            text.push_str(&format!(
                ". Or clear RR/CR/EC at run time with the commands below{} ({SETPCI_CAVEAT})",
                if more > 0 {
                    format!(" (and the same for the {more} others)")
                } else {
                    String::new()
                }
            ));
        }
        text.push_str(". Devices below those bridges then reach each other without the IOMMU (they share an IOMMU group)");
        let fix = Fix::new(text).param(pci_param(&param)).commands(setpci);
        let mut subjects: Vec<Bdf> = bridges.clone();
        for p in &pairs {
            subjects.push(p.provider());
            subjects.push(p.client());
        }
        out.push(
            REDIRECT
                .finding(severity, Status::Predicted, subjects, message)
                .fix(fix)
                .evidence(evidence),
        );
    }
}

/// Why the host-bridge test failed for a pair, in a few words.
pub(crate) fn host_bridge_reason(p: Pair<'_>) -> String {
    use crate::diagnose::p2pdma::HostBridgeResult as R;
    let Some(w) = &p.verdict().whitelist else {
        return "the host bridge was not consulted".to_string();
    };
    let parts: Vec<String> = w
        .checks
        .iter()
        .map(|c| match (&c.result, &c.device_id, &c.first_device) {
            (R::NotListed, Some(id), Some(dev)) => format!(
                "host bridge {} ({id} at {dev}) is not on the P2PDMA whitelist",
                c.host_bridge
            ),
            (R::NeedsSameHostBridge, Some(id), _) => format!(
                "{id} of {} is whitelisted only within one host bridge (REQ_SAME_HOST_BRIDGE)",
                c.host_bridge
            ),
            (R::NoHostBridgeDevice, _, _) => format!(
                "the first device on {}'s root bus is neither devfn 00.0 nor a Root Port, so nothing can be whitelisted",
                c.host_bridge
            ),
            (R::Whitelisted, Some(id), _) => format!("{id} of {} is whitelisted", c.host_bridge),
            _ => format!("host bridge {} is not whitelisted", c.host_bridge),
        })
        .collect();
    parts.join(" and ")
}

/// Pairs whose walk crosses a register that could not be read.
fn redirect_unknown(ctx: &Ctx, out: &mut Vec<Finding>) {
    let mut unknown: BTreeSet<Bdf> = BTreeSet::new();
    let mut inferred: BTreeMap<Bdf, String> = BTreeMap::new();
    let mut affected: Vec<Pair<'_>> = Vec::new();
    for p in ctx.pairs {
        let mut any = false;
        for u in &p.verdict().unknown {
            if let Unknown::Acs { bdf, .. } = u {
                unknown.insert(*bdf);
                inferred.insert(*bdf, u.to_string());
                any = true;
            }
        }
        if any {
            affected.push(p);
        }
    }
    if affected.is_empty() {
        return;
    }
    // What would the kernel decide if they all redirected?
    let mut worst = ctx.view.clone();
    for f in &mut worst.functions {
        if matches!(
            f.acs,
            AcsState::Unknown {
                cmdline_clears: false,
                ..
            }
        ) {
            f.acs = AcsState::Control {
                ctrl: AcsFlags(0x0c),
            };
        }
    }
    let refused_if = affected
        .iter()
        .filter(|p| {
            worst
                .calc_map_type_and_dist(ctx.kernel, p.provider_id(), p.client_id())
                .map_type
                == MapType::NotSupported
        })
        .count();
    let severity = if refused_if > 0 {
        Severity::Error
    } else {
        Severity::Warning
    };
    let consequence = if refused_if > 0 {
        format!("if any has RR, CR or EC set, the kernel refuses {refused_if} of them")
    } else {
        "if any has RR, CR or EC set, their traffic detours through the root complex".to_string()
    };
    out.push(
        REDIRECT
            .finding(
                severity,
                Status::Inconclusive,
                unknown.iter().copied().chain(affected.iter().flat_map(|p| [p.provider(), p.client()])),
                format!(
                    "the ACS Control of {} could not be read, so the kernel's decision for {} is not known ({}); {consequence}",
                    bdf_list(unknown.iter().copied()),
                    plural(affected.len(), "pair", "pairs"),
                    pair_list(&affected),
                ),
            )
            .fix(
                Fix::new("Run p2pdoctor as root so config space can be read in full")
                    .command("sudo p2pdoctor check"),
            )
            .evidence(inferred.into_values()),
    );
}

fn ordering(ctx: &Ctx, out: &mut Vec<Finding>) {
    // Only functions whose ACS Control can reorder (RR without CR, DT) or
    // steer (EC) matter; most machines have none, and then no route is
    // walked.
    let reorders: Vec<(NodeId, AcsFlags)> = ctx
        .route_nodes()
        .into_iter()
        .filter_map(|id| Some((id, ctx.view.functions[id].acs.ctrl()?)))
        .filter(|(_, c)| (c.rr() && !c.cr()) || c.dt() || c.ec())
        .collect();
    if reorders.is_empty() {
        return;
    }
    // The bridges each path crosses (the same for every pair on it).
    let inner: Vec<BTreeSet<NodeId>> = ctx
        .pairs
        .representatives()
        .map(|(a, b)| {
            let mut r = super::super::pairs::route(ctx.tree, a, b);
            r.pop();
            r.remove(0);
            r.into_iter().collect()
        })
        .collect();
    for (id, ctrl) in reorders {
        let bdf = ctx.bdf(id);
        // The pairs whose route crosses it.
        let pairs: Vec<Pair<'_>> = ctx
            .pairs
            .iter()
            .filter(|p| {
                p.provider_id() == id
                    || p.client_id() == id
                    || inner[p.path_id() as usize].contains(&id)
            })
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let pairs = &pairs;
        if ctrl.rr() && !ctrl.cr() {
            out.push(
                RR_WITHOUT_CR
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [bdf],
                        format!(
                            "{bdf} has ACS RR+ CR- ({}): requests between peers go up through the root complex while completions take the short path, so a completion can pass earlier posted writes; on the path of {} ({})",
                            describe_ctrl(ctrl),
                            plural(pairs.len(), "pair", "pairs"),
                            pair_list(pairs)
                        ),
                    )
                    .fix(
                        Fix::new(format!(
                            "Make RR and CR agree: pci=disable_acs_redir={bdf} clears both (direct P2P), or pci=config_acs=xxx11xx@{bdf} (kernel 6.11+) sets both"
                        ))
                        .param(KernelParam::new("pci", format!("disable_acs_redir={bdf}"))),
                    ),
            );
        }
        if ctrl.dt() {
            let ats: BTreeSet<Bdf> = pairs
                .iter()
                .flat_map(|p| [p.provider_id(), p.client_id()])
                .filter(|&e| {
                    ctx.tree
                        .node(e)
                        .caps
                        .ats
                        .as_ref()
                        .is_some_and(|a| a.enabled)
                })
                .map(|e| ctx.bdf(e))
                .collect();
            if !ats.is_empty() {
                let redirected = if ctrl.redirects() {
                    "untranslated ones are redirected to the root complex"
                } else {
                    "untranslated ones follow the normal routing"
                };
                out.push(
                    DT_WITH_ATS
                        .finding(
                            Severity::Warning,
                            Status::Predicted,
                            std::iter::once(bdf).chain(ats.iter().copied()),
                            format!(
                                "{bdf} has ACS DT+ ({}) and {} {} ATS enabled: translated requests go directly to the peer while {redirected}, two paths with no ordering between them",
                                describe_ctrl(ctrl),
                                bdf_list(ats.iter().copied()),
                                if ats.len() == 1 { "has" } else { "have" }
                            ),
                        )
                        .fix(
                            Fix::new(format!(
                                "Use one path: clear DT with pci=config_acs=0xxxxxx@{bdf} (kernel 6.11+), or make sure the device's P2P traffic is all translated"
                            ))
                            .param(KernelParam::new("pci", format!("config_acs=0xxxxxx@{bdf}"))),
                        ),
                );
            }
        }
        if ctrl.ec() {
            let node = ctx.tree.node(id);
            let vector = if node
                .facts
                .unknown_registers
                .contains(crate::scan::Register::AcsEgressVector)
            {
                // lspci's text shows the EC flag, not the vector's size.
                "of unknown size".to_string()
            } else {
                format!(
                    "of {} bits",
                    node.caps.acs.map(|a| a.egress_vector_bits).unwrap_or(0)
                )
            };
            out.push(
                EGRESS
                    .finding(
                        Severity::Info,
                        Status::Predicted,
                        [bdf],
                        format!(
                            "{bdf} has ACS EC+ (egress control vector {vector}): it blocks or redirects P2P requests to the ports its vector selects; the kernel counts EC as redirect whatever the vector says"
                        ),
                    )
                    .fix(
                        Fix::new(format!(
                            "pci=disable_acs_redir={bdf} clears EC together with RR and CR"
                        ))
                        .param(KernelParam::new("pci", format!("disable_acs_redir={bdf}"))),
                    ),
            );
        }
    }
}

fn ident(ctx: &Ctx, id: NodeId) -> DeviceIdent {
    let n = ctx.tree.node(id);
    DeviceIdent {
        chain: std::iter::once(id)
            .chain(ctx.tree.ancestors(id))
            .map(|a| ctx.bdf(a))
            .collect(),
        vendor: n.facts.vendor.unwrap_or(0xffff),
        device: n.facts.device.unwrap_or(0xffff),
        subsystem: n.caps.subsystem.unwrap_or((0, 0)),
    }
}

/// (name, value, fixed mask and flags, understood by this kernel)
type ParamSpec<'a> = (&'a str, Option<&'a str>, Option<(u16, u16)>, bool);

fn params(ctx: &Ctx, out: &mut Vec<Finding>) {
    let p = ctx.params;
    for (name, all) in [
        ("disable_acs_redir", &p.disable_acs_redir_all),
        ("config_acs", &p.config_acs_all),
    ] {
        if all.len() > 1 {
            let kept = all.last().cloned().unwrap_or_default();
            out.push(
                PARAM
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [],
                        format!(
                            "pci={name}= is given {} times; the kernel keeps only the last ({kept}) and ignores {}",
                            all.len(),
                            all[..all.len() - 1].join(", ")
                        ),
                    )
                    .fix(
                        Fix::new(format!(
                            "Give one pci={name}= with every device in one ;-separated list: pci={name}={}",
                            all.join(";")
                        ))
                        .param(KernelParam::new("pci", format!("{name}={}", all.join(";")))),
                    ),
            );
        }
    }
    if p.config_acs.is_some() && !ctx.kernel.config_acs {
        out.push(
            PARAM
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    [],
                    format!(
                        "pci=config_acs= needs kernel {} or newer; kernel {} logs \"PCI: Unknown option\" and ignores it",
                        ctx.kernel.features.config_acs, ctx.kernel.version
                    ),
                )
                .fix("Use pci=disable_acs_redir= (which every kernel since 5.1 knows), or a newer kernel"),
        );
    }
    let redir_fixed = Some((REDIR, !REDIR));
    let specs: [ParamSpec; 2] = [
        (
            "disable_acs_redir",
            p.disable_acs_redir.as_deref(),
            redir_fixed,
            true,
        ),
        (
            "config_acs",
            p.config_acs.as_deref(),
            None,
            ctx.kernel.config_acs,
        ),
    ];
    for (name, value, fixed, understood) in specs {
        let (Some(value), true) = (value, understood) else {
            continue;
        };
        let entries: Vec<&str> = value.split(';').collect();
        let mut matched: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
        let mut errors: BTreeMap<usize, ParamError> = BTreeMap::new();
        let dummy = DeviceIdent {
            chain: vec![Bdf::new(u32::MAX, 0xff, 0x1f, 7)],
            vendor: 0xffff,
            device: 0xffff,
            subsystem: (0xffff, 0xffff),
        };
        let mut note = |m: crate::diagnose::acs_params::ParamMatch, id: Option<NodeId>| {
            if let (Some((entry, _, _)), Some(id)) = (m.matched, id) {
                matched.entry(entry).or_default().push(id);
            }
            if let Some(e) = m.error {
                errors.entry(e.entry).or_insert(e);
            }
        };
        note(match_param(&dummy, value, fixed), None);
        for id in ctx.tree.ids() {
            note(match_param(&ident(ctx, id), value, fixed), Some(id));
        }
        let first_error = errors.keys().next().copied();
        for (entry, e) in &errors {
            out.push(
                PARAM
                    .finding(
                        Severity::Warning,
                        Status::Predicted,
                        [],
                        format!(
                            "pci={name}=: entry {} (`{}`) cannot be used; the kernel logs \"{}\" and ignores it and every entry after it",
                            entry + 1,
                            entries.get(*entry).copied().unwrap_or(""),
                            e.kernel_message
                        ),
                    )
                    .fix(if fixed.is_some() {
                        "Write each device as [<domain>:]<bus>:<dev>.<fn>[/<dev>.<fn>...] or pci:<vendor>:<device>, separated by ;".to_string()
                    } else {
                        "Write each entry as <7 flags of 0, 1 or x, bit 0 (SV) last>@<device>, separated by ;".to_string()
                    }),
            );
        }
        for (i, entry) in entries.iter().enumerate() {
            if first_error.is_some_and(|e| i >= e) || entry.is_empty() {
                continue;
            }
            match matched.get(&i) {
                None => out.push(
                    PARAM
                        .finding(
                            Severity::Warning,
                            Status::Predicted,
                            [],
                            format!("pci={name}=: entry `{entry}` names no PCI device on this machine; it has no effect"),
                        )
                        .fix("Check the address with lspci -D (or the path with lspci -t)"),
                ),
                Some(ids) => {
                    let with_acs: Vec<NodeId> = ids
                        .iter()
                        .copied()
                        .filter(|&id| ctx.view.functions[id].acs != AcsState::Absent)
                        .collect();
                    if with_acs.is_empty() {
                        out.push(
                            PARAM
                                .finding(
                                    Severity::Warning,
                                    Status::Predicted,
                                    ids.iter().map(|&id| ctx.bdf(id)),
                                    format!(
                                        "pci={name}=: entry `{entry}` names {}, which has no ACS capability; the parameter changes nothing there",
                                        bdf_list(ids.iter().map(|&id| ctx.bdf(id)))
                                    ),
                                )
                                .fix("Name the bridges the kernel listed in its \"to disable ACS redirect\" message instead"),
                        );
                    }
                }
            }
        }
    }
    // Named by disable_acs_redir, yet redirect is on now.
    for (id, e) in ctx.tree.ids().zip(ctx.effects.iter()) {
        if e.disable_acs_redir.is_none() {
            continue;
        }
        let Some(ctrl) = ctx.view.functions[id].acs.ctrl() else {
            continue;
        };
        if !ctrl.redirects() {
            continue;
        }
        let bdf = ctx.bdf(id);
        let why = match e.config_acs {
            Some((_, mask, flags)) if flags & mask & REDIR != 0 => {
                "pci=config_acs= names it too and, applied after, sets a redirect bit again".to_string()
            }
            _ => "something set the bits after boot (setpci, a reset that restored firmware values) or a device-specific quirk handles its ACS".to_string(),
        };
        out.push(
            PARAM
                .finding(
                    Severity::Warning,
                    Status::Predicted,
                    [bdf],
                    format!(
                        "{bdf} is named in pci=disable_acs_redir= but shows {} now: {why}",
                        describe_ctrl(ctrl)
                    ),
                )
                .fix(
                    Fix::new(format!(
                        "Clear the bits with the command below ({SETPCI_CAVEAT}) and find what sets them"
                    ))
                    .command(format!("sudo setpci -s {bdf} ECAP_ACS+6.w=0000:{REDIR:04x}")),
                ),
        );
    }
}
