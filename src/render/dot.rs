//! `topo --format dot`: Graphviz, a cluster per host bridge and per switch.
//!
//! Written by hand: IDs are always quoted (BDFs contain `:` and `.`), and
//! switches are clusters, which general DOT writers do not offer.

use std::io::{self, Write};

use super::{Render, RenderOptions};
use crate::topology::{Node, NodeId, Role, Tree};
use crate::units::human_bytes;

pub struct DotGraph;

/// A DOT string literal: quotes and backslashes escaped, newlines as `\n`.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

pub(crate) fn label(node: &Node) -> String {
    let mut lines = vec![format!("{} {}", node.bdf(), node.role.label()), node.name()];
    let mut extra = Vec::new();
    if let Some(acs) = node.caps.acs.as_ref().and_then(|a| a.ctrl)
        && acs.0 & 0x7f != 0
    {
        extra.push(format!("ACS {}", acs.names().join(" ")));
    }
    if let Some(m) = &node.facts.p2pmem {
        extra.push(format!(
            "p2pmem {}",
            m.size.map(human_bytes).unwrap_or_default()
        ));
    }
    if !node.facts.block_devices.is_empty() {
        extra.push(node.facts.block_devices.join(","));
    }
    if !extra.is_empty() {
        lines.push(extra.join(" · "));
    }
    lines.join("\n")
}

pub(crate) fn node_attrs(node: &Node) -> &'static str {
    match node.role {
        Role::RootPort => "shape=box, style=filled, fillcolor=\"#dde8f5\"",
        Role::SwitchUpstreamPort | Role::SwitchDownstreamPort => {
            "shape=box, style=filled, fillcolor=\"#e8e8e8\""
        }
        Role::HostBridgeDevice => "shape=box, style=dashed",
        _ if node.facts.p2pmem.is_some() => {
            "shape=box, style=\"filled,rounded\", fillcolor=\"#d9f2d9\""
        }
        _ => "shape=box, style=rounded",
    }
}

fn write_node(out: &mut dyn Write, indent: &str, node: &Node) -> io::Result<()> {
    writeln!(
        out,
        "{indent}{} [label={}, {}];",
        quote(&node.bdf().to_string()),
        quote(&label(node)),
        node_attrs(node)
    )
}

/// How a drawing's host-bridge clusters are written; the rest is the
/// same for `topo --format dot` and `check --format dot`.
pub(crate) struct Clusters<'a> {
    /// The indentation of the host bridge's `subgraph` line.
    pub indent: &'a str,
    /// The host bridge's NUMA node in its label (where no NUMA cluster
    /// around it says it).
    pub numa_in_label: bool,
    /// A cluster's label and style on one line rather than two.
    pub one_line: bool,
}

/// Which functions a switch cluster draws (its ports).
fn in_switch(tree: &Tree) -> Vec<bool> {
    let mut in_switch = vec![false; tree.nodes.len()];
    for s in &tree.switches {
        in_switch[s.upstream] = true;
        for &d in &s.downstream {
            in_switch[d] = true;
        }
    }
    in_switch
}

/// Host bridge `hi`'s cluster: its root complex, its functions outside
/// switches, and a cluster per switch below it. `node` writes one
/// function's line at the indentation given.
pub(crate) fn host_bridge_cluster(
    out: &mut dyn Write,
    tree: &Tree,
    hi: usize,
    how: &Clusters,
    node: &mut dyn FnMut(&mut dyn Write, &str, NodeId) -> io::Result<()>,
) -> io::Result<()> {
    let cluster = |out: &mut dyn Write, indent: &str, label: String, style: &str| {
        if how.one_line {
            writeln!(out, "{indent}label={}; {style}", quote(&label))
        } else {
            writeln!(out, "{indent}label={};", quote(&label))?;
            writeln!(out, "{indent}{style}")
        }
    };
    let hb = &tree.host_bridges[hi];
    let i0 = how.indent;
    let i1 = format!("{i0}  ");
    let i2 = format!("{i0}    ");
    writeln!(
        out,
        "{i0}subgraph {} {{",
        quote(&format!("cluster_{}", hb.id))
    )?;
    let numa = match hb.numa_node {
        Some(n) if how.numa_in_label => format!(" (NUMA {n})"),
        _ => String::new(),
    };
    cluster(
        out,
        &i1,
        format!("host bridge {}{numa}", hb.id),
        "style=rounded; color=\"#4a6fa5\";",
    )?;
    writeln!(
        out,
        "{i1}{} [label={}, shape=octagon];",
        quote(&hb.id),
        quote(&format!("{} root complex", hb.id))
    )?;
    let in_switch = in_switch(tree);
    for id in tree.ids().filter(|&i| tree.nodes[i].host_bridge == hi) {
        if !in_switch[id] {
            node(out, &i1, id)?;
        }
    }
    for (si, s) in tree.switches.iter().enumerate() {
        if tree.node(s.upstream).host_bridge != hi {
            continue;
        }
        let up = tree.node(s.upstream);
        writeln!(
            out,
            "{i1}subgraph {} {{",
            quote(&format!("cluster_switch_{si}"))
        )?;
        cluster(
            out,
            &i2,
            format!("switch {} ({})", up.bdf(), up.name()),
            "style=filled; fillcolor=\"#f5f5f5\"; color=\"#888888\";",
        )?;
        for &id in std::iter::once(&s.upstream).chain(&s.downstream) {
            node(out, &i2, id)?;
        }
        writeln!(out, "{i1}}}")?;
    }
    writeln!(out, "{i0}}}")
}

/// The tree's edges: each function from its parent (or its host bridge),
/// labelled with its link; `degraded` styles a link trained below its
/// capability.
pub(crate) fn tree_edges(out: &mut dyn Write, tree: &Tree, degraded: &str) -> io::Result<()> {
    for node in &tree.nodes {
        let from = match node.parent {
            Some(p) => tree.node(p).bdf().to_string(),
            None => tree
                .host_bridges
                .get(node.host_bridge)
                .map(|h| h.id.clone())
                .unwrap_or_default(),
        };
        let attrs = match node.link.as_ref().filter(|l| l.width.is_some()) {
            Some(l) if l.degraded() => format!(" [label={}, {degraded}]", quote(&l.describe())),
            Some(l) => format!(" [label={}]", quote(&l.describe())),
            None => String::new(),
        };
        writeln!(
            out,
            "  {} -> {}{};",
            quote(&from),
            quote(&node.bdf().to_string()),
            attrs
        )?;
    }
    Ok(())
}

impl Render for DotGraph {
    fn render(&self, tree: &Tree, _opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "digraph \"p2pdoctor\" {{")?;
        writeln!(out, "  rankdir=TB;")?;
        writeln!(out, "  node [fontname=\"monospace\", fontsize=10];")?;
        writeln!(out, "  edge [fontname=\"monospace\", fontsize=9];")?;
        let how = Clusters {
            indent: "  ",
            numa_in_label: true,
            one_line: false,
        };
        for hi in 0..tree.host_bridges.len() {
            host_bridge_cluster(out, tree, hi, &how, &mut |out, indent, id| {
                write_node(out, indent, tree.node(id))
            })?;
        }
        tree_edges(out, tree, "color=\"#c0392b\", fontcolor=\"#c0392b\"")?;
        writeln!(out, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_escape() {
        assert_eq!(quote("0000:00:01.0"), "\"0000:00:01.0\"");
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
