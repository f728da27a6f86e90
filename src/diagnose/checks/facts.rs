//! Facts family: what could not be read, said once, so that nothing
//! passes silently.

use super::{Ctx, Family, Rule, RuleRef, Stage};
use crate::diagnose::fix::Fix;
use crate::diagnose::{Finding, Severity, Status};
use crate::topology::NodeId;

pub const UNREADABLE: RuleRef = RuleRef {
    id: "P2P901",
    name: "facts-unreadable",
};

/// Set by `check --confirm` (Diagnosis::settle), not by a check.
pub const CONTRADICTED: RuleRef = RuleRef {
    id: "P2P902",
    name: "prediction-contradicted",
};

/// Set by `check --confirm` (Diagnosis::settle), not by a check.
pub const MISMATCH: RuleRef = RuleRef {
    id: "P2P903",
    name: "data-mismatch",
};

pub(super) const RULES: &[Rule] = &[
    Rule::check(UNREADABLE, Family::Facts, unreadable),
    Rule::elsewhere(CONTRADICTED, Family::Facts, Stage::Confirm),
    Rule::elsewhere(MISMATCH, Family::Facts, Stage::Confirm),
];

/// P2P901: devices whose config space could be read only in part.
fn unreadable(ctx: &Ctx) -> Vec<Finding> {
    let truncated: Vec<NodeId> = ctx.tree.ids().filter(|&id| ctx.truncated(id)).collect();
    if truncated.is_empty() {
        return Vec::new();
    }
    // Name the devices that matter: those on a pair's path, else all.
    let route = ctx.route_nodes();
    let relevant: Vec<NodeId> = if route.is_empty() {
        truncated.clone()
    } else {
        truncated
            .iter()
            .copied()
            .filter(|id| route.contains(id))
            .collect()
    };
    let subjects = if relevant.is_empty() {
        &truncated
    } else {
        &relevant
    };
    vec![
        UNREADABLE
            .finding(
                Severity::Warning,
                Status::Inconclusive,
                subjects.iter().map(|&id| ctx.bdf(id)),
                format!(
                    "{} of {} devices show only 64 bytes of config space (not root): ACS Control, port types, ATS, MPS, Relaxed Ordering, AER and bus mastering are unknown, so P2P302, P2P303, P2P603, P2P703, P2P704 and P2P802 could not be checked on them and decisions that depend on ACS are marked inconclusive",
                    truncated.len(),
                    ctx.tree.nodes.len()
                ),
            )
            .fix(
                Fix::new("Run as root (the first command), or analyse a snapshot taken as root (the other two, where p2pdoctor runs as root and wherever the snapshot is read)")
                    .command("sudo p2pdoctor check")
                    .command("sudo p2pdoctor snapshot -o s.tar.gz")
                    .command("p2pdoctor --root s.tar.gz check"),
            ),
    ]
}
