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

impl Render for DotGraph {
    fn render(&self, tree: &Tree, _opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "digraph \"p2pdoctor\" {{")?;
        writeln!(out, "  rankdir=TB;")?;
        writeln!(out, "  node [fontname=\"monospace\", fontsize=10];")?;
        writeln!(out, "  edge [fontname=\"monospace\", fontsize=9];")?;
        let mut in_switch = vec![None; tree.nodes.len()];
        for (i, s) in tree.switches.iter().enumerate() {
            in_switch[s.upstream] = Some(i);
            for &d in &s.downstream {
                in_switch[d] = Some(i);
            }
        }
        for (hi, hb) in tree.host_bridges.iter().enumerate() {
            writeln!(
                out,
                "  subgraph {} {{",
                quote(&format!("cluster_{}", hb.id))
            )?;
            let numa = hb
                .numa_node
                .map(|n| format!(" (NUMA {n})"))
                .unwrap_or_default();
            writeln!(
                out,
                "    label={};",
                quote(&format!("host bridge {}{numa}", hb.id))
            )?;
            writeln!(out, "    style=rounded; color=\"#4a6fa5\";")?;
            writeln!(
                out,
                "    {} [label={}, shape=octagon];",
                quote(&hb.id),
                quote(&format!("{} root complex", hb.id))
            )?;
            let members: Vec<NodeId> = (0..tree.nodes.len())
                .filter(|&n| tree.nodes[n].host_bridge == hi)
                .collect();
            for &n in members.iter().filter(|&&n| in_switch[n].is_none()) {
                write_node(out, "    ", tree.node(n))?;
            }
            for (si, s) in tree.switches.iter().enumerate() {
                if tree.node(s.upstream).host_bridge != hi {
                    continue;
                }
                let up = tree.node(s.upstream);
                writeln!(
                    out,
                    "    subgraph {} {{",
                    quote(&format!("cluster_switch_{si}"))
                )?;
                writeln!(
                    out,
                    "      label={};",
                    quote(&format!("switch {} ({})", up.bdf(), up.name()))
                )?;
                writeln!(
                    out,
                    "      style=filled; fillcolor=\"#f5f5f5\"; color=\"#888888\";"
                )?;
                for &n in std::iter::once(&s.upstream).chain(&s.downstream) {
                    write_node(out, "      ", tree.node(n))?;
                }
                writeln!(out, "    }}")?;
            }
            writeln!(out, "  }}")?;
        }
        for node in &tree.nodes {
            let from = match node.parent {
                Some(p) => tree.node(p).bdf().to_string(),
                None => tree
                    .host_bridges
                    .get(node.host_bridge)
                    .map(|h| h.id.clone())
                    .unwrap_or_default(),
            };
            let link = node.link.as_ref().filter(|l| l.width.is_some());
            let attrs = match link {
                Some(l) if l.degraded() => format!(
                    " [label={}, color=\"#c0392b\", fontcolor=\"#c0392b\"]",
                    quote(&l.describe())
                ),
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
