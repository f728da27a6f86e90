//! `fleet` as text: the families with their outliers and what makes each
//! differ, then the table of findings by node.

use std::io::{self, Write};

use crate::compare::Change;
use crate::fleet::Fleet;
use crate::render::style::Painter;

/// At most this many differences per outlier group in text (JSON has all).
const SHOWN: usize = 12;

/// Node names come from file names: no control characters on a terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn change_line(c: &Change) -> String {
    let before = c.before.as_deref().unwrap_or("(none)");
    let after = c.after.as_deref().unwrap_or("(none)");
    let line = match (&c.before, &c.after) {
        (Some(_), None) if c.what == "removed" => format!("- {}: removed {before}", c.subject),
        (None, Some(_)) if c.what == "added" => format!("+ {}: added {after}", c.subject),
        (Some(_), None) => format!("- {}: {} {before}", c.subject, c.what),
        (None, Some(_)) => format!("+ {}: {} {after}", c.subject, c.what),
        _ => format!("~ {}: {} {before} → {after}", c.subject, c.what),
    };
    clean(&line)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn names(list: &[String]) -> String {
    const MAX: usize = 6;
    let mut s: Vec<String> = list.iter().take(MAX).map(|n| clean(n)).collect();
    if list.len() > MAX {
        s.push(format!("and {} more", list.len() - MAX));
    }
    s.join(", ")
}

pub fn render(f: &Fleet, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let p = Painter { enabled: color };
    let groups: usize = f.families.iter().map(|x| x.outliers.len()).sum();
    writeln!(
        out,
        "p2pdoctor fleet: {}, {}, {}{}",
        plural(f.nodes_total, "node", "nodes"),
        plural(f.families.len(), "family", "families"),
        if groups == 0 {
            "no outliers".to_string()
        } else {
            format!(
                "{} in {}",
                plural(f.outlier_nodes(), "outlier node", "outlier nodes"),
                plural(groups, "group", "groups")
            )
        },
        if f.unreadable.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", f.unreadable.len())
        }
    )?;
    for fam in &f.families {
        writeln!(out)?;
        let head = format!(
            "family {}: {}, norm {} ({} like {})",
            fam.family,
            plural(fam.nodes, "node", "nodes"),
            fam.fingerprint,
            fam.majority,
            clean(&fam.representative)
        );
        writeln!(out, "{}", p.bold(&head))?;
        if fam.nodes == 1 && f.families.len() > 1 {
            writeln!(out, "  {}", p.warn("unlike every other family"))?;
        }
        if fam.outliers.iter().any(|o| o.nodes.len() >= fam.majority) {
            writeln!(
                out,
                "  {}",
                p.warn("no majority: as many nodes differ from the norm as have it; the norm is the first by name")
            )?;
        }
        for o in &fam.outliers {
            writeln!(
                out,
                "  {} {} ({}, {:.0}% alike; {} compared with {}):",
                p.bad("outlier"),
                o.fingerprint,
                plural(o.nodes.len(), "node", "nodes"),
                o.alike * 100.0,
                clean(&o.compared),
                clean(&fam.representative)
            )?;
            writeln!(out, "    nodes: {}", names(&o.nodes))?;
            if let Some(e) = &o.error {
                writeln!(
                    out,
                    "    {}",
                    p.bad(&format!("no comparison: {}", clean(e)))
                )?;
            } else if o.differences.is_empty() {
                writeln!(
                    out,
                    "    no difference diff reports (the fingerprints differ in findings' subjects or order)"
                )?;
            }
            for c in o.differences.iter().take(SHOWN) {
                writeln!(out, "    {}", change_line(c))?;
            }
            if o.differences.len() > SHOWN {
                writeln!(
                    out,
                    "    ... and {} more (--format json, or p2pdoctor diff)",
                    o.differences.len() - SHOWN
                )?;
            }
        }
    }
    if !f.unreadable.is_empty() {
        writeln!(out, "\n{}", p.bold("unreadable"))?;
        for u in &f.unreadable {
            writeln!(out, "  {}: {}", clean(&u.node), p.bad(&clean(&u.error)))?;
        }
    }
    writeln!(out, "\n{}", p.bold("findings by node"))?;
    let width = f
        .nodes
        .iter()
        .map(|n| clean(&n.node).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "  {:<width$}  {:>6}  {:<8}  {:>6}  {:>8}  {:>4}  {:>12}  RULES",
        "NODE", "FAMILY", "VERDICT", "ERRORS", "WARNINGS", "INFO", "INCONCLUSIVE"
    )?;
    for n in &f.nodes {
        let fam = if n.outlier {
            format!("{}*", n.family)
        } else {
            n.family.to_string()
        };
        let verdict = format!("{:<8}", n.verdict);
        let verdict = match n.verdict.as_str() {
            "errors" => p.bad(&verdict),
            "warnings" => p.warn(&verdict),
            _ => p.good(&verdict),
        };
        writeln!(
            out,
            "  {:<width$}  {:>6}  {verdict}  {:>6}  {:>8}  {:>4}  {:>12}  {}",
            clean(&n.node),
            fam,
            n.errors,
            n.warnings,
            n.info,
            n.inconclusive,
            n.rules.join(" ")
        )?;
    }
    if f.nodes.iter().any(|n| n.outlier) {
        writeln!(out, "  (* an outlier of its family)")?;
    }
    Ok(())
}
