//! `check --format dot`: the P2P picture for Graphviz. The tree as `topo
//! --dot` draws it (a cluster per host bridge and per switch), inside a
//! cluster per NUMA node, with bridges that redirect peer traffic in red,
//! every pair as a coloured undirected edge (`constraint=false`, so the
//! tree keeps its shape), and a legend cluster.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::{ACS_RED, EDGE_CLASSES, Ends, edge_colour, edge_meaning};
use crate::diagnose::Diagnosis;
use crate::render::dot::{Clusters, host_bridge_cluster, label, node_attrs, quote, tree_edges};
use crate::topology::{NodeId, Tree};

fn write_node(
    out: &mut dyn Write,
    indent: &str,
    tree: &Tree,
    id: NodeId,
    red: bool,
) -> io::Result<()> {
    let node = tree.node(id);
    let mut attrs = node_attrs(node).to_string();
    if red {
        attrs.push_str(&format!(", color=\"{ACS_RED}\", penwidth=2.5"));
    }
    writeln!(
        out,
        "{indent}{} [label={}, {attrs}];",
        quote(&node.bdf().to_string()),
        quote(&label(node))
    )
}

pub fn render(tree: &Tree, d: &Diagnosis, out: &mut dyn Write) -> io::Result<()> {
    let red = super::acs_redirecting(tree, Some(d));
    let (edges, total) = super::pair_edges(tree, d);
    writeln!(out, "digraph \"p2pdoctor\" {{")?;
    writeln!(out, "  rankdir=TB;")?;
    writeln!(
        out,
        "  label={}; labelloc=t;",
        quote(&format!(
            "{}: {}{}",
            d.summary.verdict.predicted.as_str(),
            d.summary.headline,
            if total > edges.len() {
                format!(" ({} of {total} device pairs drawn)", edges.len())
            } else {
                String::new()
            }
        ))
    )?;
    writeln!(out, "  node [fontname=\"monospace\", fontsize=10];")?;
    writeln!(out, "  edge [fontname=\"monospace\", fontsize=9];")?;
    let numa: BTreeSet<Option<i32>> = tree.host_bridges.iter().map(|h| h.numa_node).collect();
    let how = Clusters {
        indent: "    ",
        numa_in_label: false,
        one_line: true,
    };
    for (ni, n) in numa.iter().enumerate() {
        writeln!(
            out,
            "  subgraph {} {{",
            quote(&format!("cluster_numa_{ni}"))
        )?;
        let name = n
            .map(|n| format!("NUMA node {n}"))
            .unwrap_or_else(|| "NUMA node unknown".into());
        writeln!(
            out,
            "    label={}; style=rounded; color=\"#b7950b\";",
            quote(&name)
        )?;
        for (hi, hb) in tree.host_bridges.iter().enumerate() {
            if hb.numa_node == *n {
                host_bridge_cluster(out, tree, hi, &how, &mut |out, indent, id| {
                    write_node(out, indent, tree, id, red[id])
                })?;
            }
        }
        writeln!(out, "  }}")?;
    }
    tree_edges(
        out,
        tree,
        "color=\"#e67e22\", fontcolor=\"#e67e22\", style=dashed",
    )?;
    for e in &edges {
        let (a, b, label) = match e.ends {
            Ends::Devices(a, b) => (
                tree.node(a).bdf().to_string(),
                tree.node(b).bdf().to_string(),
                String::new(),
            ),
            Ends::HostBridges(a, b) => (
                tree.host_bridges[a].id.clone(),
                tree.host_bridges[b].id.clone(),
                format!(
                    ", label={}, penwidth=4",
                    quote(&format!("{} pairs", e.pairs))
                ),
            ),
            Ends::Fan(n) => (
                tree.node(n).bdf().to_string(),
                tree.host_bridges[tree.node(n).host_bridge].id.clone(),
                format!(
                    ", label={}, penwidth=4",
                    quote(&format!("{} pairs", e.pairs))
                ),
            ),
        };
        writeln!(
            out,
            "  {} -> {} [class={}, dir=none, constraint=false, color=\"{}\", penwidth=2{}{label}, tooltip={}];",
            quote(&a),
            quote(&b),
            quote(&format!("pair {}", e.map_type.as_str())),
            edge_colour(e.map_type),
            if e.certain { "" } else { ", style=dotted" },
            quote(&e.details.join("\n"))
        )?;
    }
    // The legend.
    writeln!(out, "  subgraph \"cluster_legend\" {{")?;
    writeln!(
        out,
        "    label=\"legend\"; style=rounded; color=\"#999999\";"
    )?;
    writeln!(
        out,
        "    \"legend_acs\" [label=\"bridge with ACS redirect\\n(peer traffic goes up to the root complex)\", shape=box, color=\"{ACS_RED}\", penwidth=2.5];"
    )?;
    for m in EDGE_CLASSES {
        let (a, b) = (
            format!("legend_{}_a", m.as_str()),
            format!("legend_{}_b", m.as_str()),
        );
        writeln!(
            out,
            "    {} [shape=point]; {} [shape=point];",
            quote(&a),
            quote(&b)
        )?;
        writeln!(
            out,
            "    {} -> {} [class={}, dir=none, color=\"{}\", penwidth=2, label={}];",
            quote(&a),
            quote(&b),
            quote(&format!("legend {}", m.as_str())),
            edge_colour(m),
            quote(&format!("{}: {}", m.as_str(), edge_meaning(m)))
        )?;
    }
    writeln!(
        out,
        "    \"legend_uncertain_a\" [shape=point]; \"legend_uncertain_b\" [shape=point];"
    )?;
    writeln!(
        out,
        "    \"legend_uncertain_a\" -> \"legend_uncertain_b\" [dir=none, style=dotted, penwidth=2, label=\"decided on facts that could not be read\"];"
    )?;
    writeln!(out, "  }}")?;
    writeln!(out, "}}")
}
