//! The P2P picture: the PCI tree with the pairs drawn between devices.
//!
//! [`layout`] places the tree in the program (a tidy tree whose wide
//! levels wrap into stacked rows), [`svg`] draws it without Graphviz, and
//! [`dot`] writes `check --format dot` for those who want Graphviz's own
//! drawing. This module holds what all three share: the pair edges (one per
//! unordered device pair, in the kernel's classes) and which bridges
//! redirect peer traffic (ACS).

pub mod dot;
pub mod layout;
pub mod svg;

use std::collections::BTreeMap;

use crate::diagnose::{Diagnosis, MapType};
use crate::topology::{NodeId, Tree};

/// The classes a pair edge is drawn in, in legend order.
pub const EDGE_CLASSES: [MapType; 3] = [
    MapType::BusAddr,
    MapType::ThruHostBridge,
    MapType::NotSupported,
];

/// The colour of a pair edge of this class (SVG, DOT and HTML agree).
pub fn edge_colour(m: MapType) -> &'static str {
    match m {
        MapType::BusAddr => "#1e8449",
        MapType::ThruHostBridge => "#d68910",
        MapType::NotSupported => "#c0392b",
    }
}

/// What a pair edge of this class means, for legends.
pub fn edge_meaning(m: MapType) -> &'static str {
    match m {
        MapType::BusAddr => "allowed, bus address (turns around below a common bridge)",
        MapType::ThruHostBridge => "allowed through the host bridge (root complex)",
        MapType::NotSupported => "refused by the kernel",
    }
}

/// The red of a bridge that redirects peer traffic upstream (ACS RR/CR/EC).
pub const ACS_RED: &str = "#c0392b";

/// At most this many pair edges are drawn: past it the picture is a
/// hairball, and the matrix (HTML) or the JSON carries every pair.
pub const MAX_PAIR_EDGES: usize = 400;

/// One drawn pair: both directions of an unordered device pair, or every
/// pair of one class between two host bridges.
#[derive(Debug, Clone, PartialEq)]
pub struct PairEdge {
    pub ends: Ends,
    /// The least favourable decision of the two directions (for a bundle:
    /// the decision every pair in it shares).
    pub map_type: MapType,
    /// Every decision needed nothing that could not be read.
    pub certain: bool,
    /// Device pairs it stands for.
    pub pairs: usize,
    /// One line per direction: `A → B: bus_addr, distance 4, ...` (a
    /// bundle keeps the first [`BUNDLE_DETAILS`]).
    pub details: Vec<String>,
}

/// What a pair edge joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ends {
    /// Two devices below one host bridge.
    Devices(NodeId, NodeId),
    /// Every pair of one class between devices below two host bridges:
    /// their traffic crosses the root complexes whatever the device, so
    /// one bundled edge says it without a line across the whole picture
    /// per pair.
    HostBridges(usize, usize),
    /// Every pair of one class of a device with more than [`FAN_MIN`]
    /// peers of that class below its host bridge, drawn as one edge from
    /// the device to the host bridge: a provider paired with hundreds of
    /// NICs is one labelled line, not a hairball.
    Fan(NodeId),
}

/// A device with more pairs of one class than this below its own host
/// bridge gets a [`Ends::Fan`] for them.
pub const FAN_MIN: usize = 6;

/// Detail lines a bundle keeps.
pub const BUNDLE_DETAILS: usize = 12;

fn rank(m: MapType) -> u8 {
    match m {
        MapType::BusAddr => 0,
        MapType::ThruHostBridge => 1,
        MapType::NotSupported => 2,
    }
}

/// The pairs of the diagnosis as undirected edges (a device with itself is
/// left out: it is not a line), pairs across host bridges bundled, worst
/// first, at most [`MAX_PAIR_EDGES`]; the second value is how many edges
/// there were in all.
pub fn pair_edges(tree: &Tree, d: &Diagnosis) -> (Vec<PairEdge>, usize) {
    // Directions of one device pair first.
    let mut by: BTreeMap<(NodeId, NodeId), PairEdge> = BTreeMap::new();
    for p in &d.pairs {
        if p.provider_id() == p.client_id() {
            continue;
        }
        let key = (
            p.provider_id().min(p.client_id()),
            p.provider_id().max(p.client_id()),
        );
        let v = &p.verdict();
        let mut line = format!(
            "{} → {}: {}, distance {}, path {} (behaves as {})",
            p.provider(),
            p.client(),
            v.map_type,
            v.distance,
            p.path_class().as_str(),
            p.effective_path_class().as_str()
        );
        if !v.acs_redirect.is_empty() {
            let list: Vec<String> = v.acs_redirect.iter().map(|b| b.to_string()).collect();
            line.push_str(&format!(", ACS redirect at {}", list.join(" ")));
        }
        if !v.certain() {
            line.push_str(" (uncertain: facts unread)");
        }
        let e = by.entry(key).or_insert_with(|| PairEdge {
            ends: Ends::Devices(key.0, key.1),
            map_type: v.map_type,
            certain: true,
            pairs: 1,
            details: Vec::new(),
        });
        if rank(v.map_type) > rank(e.map_type) {
            e.map_type = v.map_type;
        }
        e.certain &= v.certain();
        e.details.push(line);
    }
    // Then bundles: across host bridges, and fans of busy devices.
    let mut degree: BTreeMap<(NodeId, u8), usize> = BTreeMap::new();
    for e in by.values() {
        if let Ends::Devices(a, b) = e.ends
            && tree.node(a).host_bridge == tree.node(b).host_bridge
        {
            *degree.entry((a, rank(e.map_type))).or_default() += 1;
            *degree.entry((b, rank(e.map_type))).or_default() += 1;
        }
    }
    let fans_out = |n: NodeId, r: u8| degree.get(&(n, r)).is_some_and(|&d| d > FAN_MIN);
    let mut fans: BTreeMap<(NodeId, u8), PairEdge> = BTreeMap::new();
    let mut edges = Vec::new();
    let mut bundles: BTreeMap<(usize, usize, u8), PairEdge> = BTreeMap::new();
    for e in by.into_values() {
        let Ends::Devices(a, b) = e.ends else {
            continue;
        };
        let (ha, hb) = (tree.node(a).host_bridge, tree.node(b).host_bridge);
        if ha == hb {
            let r = rank(e.map_type);
            let ends: Vec<NodeId> = [a, b].into_iter().filter(|&n| fans_out(n, r)).collect();
            if ends.is_empty() {
                edges.push(e);
                continue;
            }
            for n in ends {
                let fan = fans.entry((n, r)).or_insert_with(|| PairEdge {
                    ends: Ends::Fan(n),
                    map_type: e.map_type,
                    certain: true,
                    pairs: 0,
                    details: Vec::new(),
                });
                fan.pairs += 1;
                fan.certain &= e.certain;
                for l in &e.details {
                    if fan.details.len() < BUNDLE_DETAILS {
                        fan.details.push(l.clone());
                    }
                }
            }
            continue;
        }
        let key = (ha.min(hb), ha.max(hb), rank(e.map_type));
        let bundle = bundles.entry(key).or_insert_with(|| PairEdge {
            ends: Ends::HostBridges(key.0, key.1),
            map_type: e.map_type,
            certain: true,
            pairs: 0,
            details: Vec::new(),
        });
        bundle.pairs += 1;
        bundle.certain &= e.certain;
        for l in e.details {
            if bundle.details.len() < BUNDLE_DETAILS {
                bundle.details.push(l);
            }
        }
    }
    for b in bundles.values_mut() {
        b.details.insert(
            0,
            format!(
                "{} device pairs across these host bridges (the pair matrix lists each):",
                b.pairs
            ),
        );
    }
    for f in fans.values_mut() {
        f.details.insert(
            0,
            format!(
                "{} pairs of this device below its host bridge, all {} (the pair matrix lists each):",
                f.pairs,
                f.map_type.as_str()
            ),
        );
    }
    edges.extend(bundles.into_values());
    edges.extend(fans.into_values());
    let total = edges.len();
    // Worst first, so a cut keeps what matters.
    edges.sort_by_key(|e| (std::cmp::Reverse(rank(e.map_type)), e.ends));
    edges.truncate(MAX_PAIR_EDGES);
    (edges, total)
}

/// Per node: whether it redirects peer traffic upstream. Its ACS Control
/// as read (RR, CR or EC set), or the kernel's list of redirecting bridges
/// in any pair's verdict.
pub fn acs_redirecting(tree: &Tree, d: Option<&Diagnosis>) -> Vec<bool> {
    let mut red: Vec<bool> = tree
        .nodes
        .iter()
        .map(|n| {
            n.caps
                .acs
                .as_ref()
                .and_then(|a| a.ctrl)
                .is_some_and(|c| c.redirects())
        })
        .collect();
    if let Some(d) = d {
        for p in &d.pairs {
            for b in &p.verdict().acs_redirect {
                if let Some(id) = tree.find(*b) {
                    red[id] = true;
                }
            }
        }
    }
    red
}

/// Drops control characters (never valid in XML 1.0 or wanted in HTML).
fn clean(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().filter(|c| !c.is_control() || *c == '\n')
}

/// Escapes text for XML and HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_drops_controls() {
        assert_eq!(
            escape("<a href=\"x\">'&'\u{1b}[31m</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;[31m&lt;/a&gt;"
        );
    }
}
