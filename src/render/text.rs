//! The human tree, in the spirit of `lspci -tv`.

use std::io::{self, Write};

use super::style::{Painter, TerminalSafe};
use super::wrap::NOWRAP;
use super::{Render, RenderOptions};
use crate::topology::{Node, NodeId, Role, Tree};
use crate::units::human_bytes;

pub struct TextTree;

impl Render for TextTree {
    fn render(&self, tree: &Tree, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
        // The tree's lines stay whole (their branches must line up); the
        // notes and the legend wrap.
        let mut wrapped = super::wrap::Wrapper::new(out, opts.width);
        let out = &mut TerminalSafe::new(&mut wrapped);
        let p = Painter {
            enabled: opts.color,
        };
        writeln!(out, "{}", host_line(tree, &p))?;
        writeln!(out, "{}", p.dim(&format!("source: {}", opts.source)))?;
        for l in &tree.limitations {
            writeln!(out, "{} {}", p.warn("note:"), l.message)?;
        }
        if tree.nodes.is_empty() {
            writeln!(out, "\nno PCI devices found")?;
            return Ok(());
        }
        for hb in &tree.host_bridges {
            writeln!(out)?;
            let mut head = format!("{} host bridge {:04x}:{:02x}", hb.id, hb.domain, hb.bus);
            if let Some(n) = hb.numa_node {
                head.push_str(&format!(" · numa {n}"));
            }
            if let Some(f) = hb.first_function {
                let fnode = tree.node(f);
                head.push_str(&format!(
                    " · first device {} [{:04x}:{:04x}]",
                    fnode.bdf(),
                    fnode.facts.vendor.unwrap_or(0xffff),
                    fnode.facts.device.unwrap_or(0xffff)
                ));
            }
            writeln!(out, "{}{}", NOWRAP, p.bold(&head))?;
            let roots = &hb.root_functions;
            for (i, &id) in roots.iter().enumerate() {
                write_subtree(tree, id, "", i + 1 == roots.len(), &p, out)?;
            }
        }
        write_acs_legend(tree, opts.width, &p, out)
    }
}

/// What the ACS words on the tree mean: each ACS Control bit shown, and
/// `off`/`?` when they appear (PCIe Base Specification 6.0, 7.7.11.3).
fn write_acs_legend(
    tree: &Tree,
    width: Option<usize>,
    p: &Painter,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut shown: Vec<&str> = Vec::new();
    let (mut off, mut unknown) = (false, false);
    for n in &tree.nodes {
        match n.caps.acs.as_ref().map(|a| a.ctrl) {
            Some(Some(c)) if c.0 & 0x7f == 0 => off = true,
            Some(Some(c)) => {
                for name in c.names() {
                    if !shown.contains(&name) {
                        shown.push(name);
                    }
                }
            }
            Some(None) => unknown = true,
            None => {}
        }
    }
    if shown.is_empty() && !off && !unknown {
        return Ok(());
    }
    let mut parts: Vec<String> = [
        ("SV", "source validation"),
        ("TB", "translation blocking"),
        ("RR", "P2P request redirect (to the root complex)"),
        ("CR", "P2P completion redirect"),
        ("UF", "upstream forwarding"),
        ("EC", "egress control"),
        ("DT", "direct translated P2P"),
    ]
    .iter()
    .filter(|(k, _)| shown.contains(k))
    .map(|(k, what)| format!("{k} {what}"))
    .collect();
    if off {
        parts.push("off: none set".into());
    }
    if unknown {
        parts.push("?: ACS Control could not be read (not root)".into());
    }
    let text = format!("ACS bits (ACS Control): {}", parts.join(" · "));
    writeln!(out)?;
    for line in super::wrap::wrap(&text, width, "", "  ") {
        writeln!(out, "{}", p.dim(&line))?;
    }
    Ok(())
}

fn host_line(tree: &Tree, p: &Painter) -> String {
    let h = &tree.host;
    let mut parts = vec![format!(
        "host {}",
        h.hostname.as_deref().unwrap_or("(unknown)")
    )];
    parts.push(format!(
        "kernel {}",
        h.kernel_release.as_deref().unwrap_or("(unknown)")
    ));
    if let Some(v) = &h.cpu.vendor {
        let fam = h
            .cpu
            .family
            .map(|f| format!(" family 0x{f:x}"))
            .unwrap_or_default();
        parts.push(format!("cpu {v}{fam}"));
    }
    let iommu = if h.iommu_units.is_empty() && h.sources.iommu_units.is_none() {
        "iommu unknown".to_string()
    } else if h.iommu_units.is_empty() {
        "iommu none".to_string()
    } else {
        let names: Vec<&str> = h.iommu_units.iter().map(|u| u.name.as_str()).collect();
        format!("iommu {} ({})", h.iommu_units[0].kind, names.join(", "))
    };
    parts.push(iommu);
    parts.push(match h.p2pdma_config {
        Some(true) => p.good("CONFIG_PCI_P2PDMA=y"),
        Some(false) => p.bad("CONFIG_PCI_P2PDMA not set"),
        None => p.warn("CONFIG_PCI_P2PDMA unknown"),
    });
    parts.join(" · ")
}

fn write_subtree(
    tree: &Tree,
    id: NodeId,
    prefix: &str,
    last: bool,
    p: &Painter,
    out: &mut dyn Write,
) -> io::Result<()> {
    // Iterative would avoid deep recursion, but PCI depth is bounded by
    // the 256 bus numbers of a domain.
    let node = tree.node(id);
    let branch = if last { "└─ " } else { "├─ " };
    writeln!(out, "{NOWRAP}{prefix}{branch}{}", describe(node, p))?;
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    for (i, &c) in node.children.iter().enumerate() {
        write_subtree(tree, c, &child_prefix, i + 1 == node.children.len(), p, out)?;
    }
    Ok(())
}

/// One line for a function: address, role, name, then its attributes.
pub fn describe(node: &Node, p: &Painter) -> String {
    let role = if node.role_inferred {
        format!("{}?", node.role.label())
    } else {
        node.role.label().to_string()
    };
    let mut s = format!(
        "{} {} {}",
        p.bold(&node.bdf().to_string()),
        p.accent(&role),
        node.name()
    );
    let mut attrs: Vec<String> = Vec::new();
    if let Some(link) = &node.link {
        let text = link.describe();
        attrs.push(if link.degraded() { p.warn(&text) } else { text });
    }
    if let Some(acs) = &node.caps.acs {
        let text = match acs.ctrl {
            Some(ctrl) if ctrl.0 & 0x7f == 0 => "ACS off".to_string(),
            Some(ctrl) => format!("ACS {}", ctrl.names().join(" ")),
            None => "ACS ?".to_string(),
        };
        let redirect = acs.ctrl.is_some_and(|c| c.redirects());
        attrs.push(if redirect && node.role.is_bridge() {
            p.warn(&text)
        } else {
            text
        });
    }
    if let Some(g) = node.facts.iommu_group {
        match &node.facts.iommu_group_type {
            Some(t) => attrs.push(format!("group {g} ({t})")),
            None => attrs.push(format!("group {g}")),
        }
    }
    if let Some(n) = node.facts.numa_node {
        attrs.push(format!("numa {n}"));
    }
    if let Some(d) = &node.facts.driver {
        attrs.push(format!("driver {d}"));
    }
    if let Some(m) = &node.facts.p2pmem {
        let size = m.size.map(human_bytes).unwrap_or_else(|| "?".into());
        let state = match m.published {
            Some(true) => "published",
            Some(false) => "not published",
            None => "published?",
        };
        attrs.push(p.good(&format!("p2pmem {size} {state}")));
    }
    if !node.facts.block_devices.is_empty() {
        attrs.push(node.facts.block_devices.join(","));
    }
    if node.role == Role::HostBridgeDevice {
        attrs.retain(|a| !a.starts_with("numa"));
    }
    if !attrs.is_empty() {
        s.push_str(&p.dim(" · "));
        s.push_str(&attrs.join(&p.dim(" · ")));
    }
    s
}
