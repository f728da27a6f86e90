//! The path between two PCI functions.

use serde::Serialize;

use super::{NodeId, Tree};

/// How far apart two functions are, in the classes `nvidia-smi topo -m`
/// uses, with NVML's meanings, so users can map one onto the other. A
/// PCIe switch (its upstream port, internal bus and downstream ports)
/// counts as one bridge, as NVML counts it: two GPUs below one switch
/// are PIX there.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum PathClass {
    /// The same function.
    X,
    /// Through at most one PCIe bridge: below one switch, or functions of
    /// one device.
    Pix,
    /// Through several PCIe bridges (cascaded switches), without the host
    /// bridge.
    Pxb,
    /// Through a PCIe host bridge (the root complex).
    Phb,
    /// Across host bridges within one NUMA node.
    Node,
    /// Across NUMA nodes (the CPU interconnect).
    Sys,
}

impl PathClass {
    /// Where the TLPs really go: a pair the kernel sends through the root
    /// complex (ACS redirect, no common bridge) behaves as PHB at least,
    /// whatever the wiring below it.
    pub fn effective(self, through_root_complex: bool) -> PathClass {
        if through_root_complex && self < PathClass::Phb && self != PathClass::X {
            PathClass::Phb
        } else {
            self
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PathClass::X => "X",
            PathClass::Pix => "PIX",
            PathClass::Pxb => "PXB",
            PathClass::Phb => "PHB",
            PathClass::Node => "NODE",
            PathClass::Sys => "SYS",
        }
    }
}

/// The route between `a` and `b` up to their lowest common bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Path {
    pub a: NodeId,
    pub b: NodeId,
    /// The lowest bridge above both, if any.
    pub common: Option<NodeId>,
    /// Bridges climbed from `a` below the common bridge, nearest first.
    pub up_from_a: Vec<NodeId>,
    /// Bridges climbed from `b` below the common bridge, nearest first.
    pub up_from_b: Vec<NodeId>,
    /// Both below one host bridge.
    pub same_host_bridge: bool,
    /// The traffic turns around in the root complex (no common bridge).
    pub through_host_bridge: bool,
    /// The two sit on different NUMA nodes (as their host bridges report).
    pub crosses_numa: bool,
    /// Switches (indexes into `Tree::switches`) the path passes through.
    pub switches: Vec<usize>,
    pub class: PathClass,
}

impl Path {
    pub(super) fn between(tree: &Tree, a: NodeId, b: NodeId) -> Path {
        let anc_a = tree.ancestors(a);
        let anc_b = tree.ancestors(b);
        let common = anc_a.iter().copied().find(|x| anc_b.contains(x));
        let below = |anc: &[NodeId]| -> Vec<NodeId> {
            anc.iter()
                .copied()
                .take_while(|&x| Some(x) != common)
                .collect()
        };
        let up_from_a = below(&anc_a);
        let up_from_b = below(&anc_b);
        let (na, nb) = (tree.node(a), tree.node(b));
        let same_host_bridge = na.host_bridge == nb.host_bridge;
        let numa = |n: NodeId| {
            let node = tree.node(n);
            node.facts.numa_node.or_else(|| {
                tree.host_bridges
                    .get(node.host_bridge)
                    .and_then(|h| h.numa_node)
            })
        };
        let crosses_numa = matches!((numa(a), numa(b)), (Some(x), Some(y)) if x != y);
        let mut switches: Vec<usize> = up_from_a
            .iter()
            .chain(&up_from_b)
            .chain(common.iter())
            .filter_map(|&n| tree.node(n).switch)
            .collect();
        switches.sort_unstable();
        switches.dedup();
        let through_host_bridge = a != b && common.is_none();
        let class = if a == b {
            PathClass::X
        } else if common.is_some() {
            // Bridges crossed, a switch counting once: the switches on the
            // way, plus every bridge that is no switch port (a PCIe-to-PCI
            // bridge, a root port both sit below).
            let lone_bridges = up_from_a
                .iter()
                .chain(&up_from_b)
                .chain(common.iter())
                .filter(|&&n| tree.node(n).switch.is_none())
                .count();
            if switches.len() + lone_bridges <= 1 {
                PathClass::Pix
            } else {
                PathClass::Pxb
            }
        } else if same_host_bridge {
            if up_from_a.is_empty() && up_from_b.is_empty() && na.bdf().same_device(&nb.bdf()) {
                // Two functions of one root-bus device.
                PathClass::Pix
            } else {
                PathClass::Phb
            }
        } else if crosses_numa {
            PathClass::Sys
        } else {
            PathClass::Node
        };
        Path {
            a,
            b,
            common,
            up_from_a,
            up_from_b,
            same_host_bridge,
            through_host_bridge,
            crosses_numa,
            switches,
            class,
        }
    }
}
