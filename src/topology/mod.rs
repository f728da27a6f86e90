//! The PCI tree: host bridges, ports, switches, endpoints, and the path
//! between any two functions.
//!
//! Built from [`Facts`] and decoded config space; pure, no I/O. Names
//! follow the kernel: a function's parent is `pci_upstream_bridge()`, a
//! root bus hangs below a host bridge.

mod path;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::pci::{self, Bdf, Decoded, PortType};
use crate::scan::{
    DeviceFacts, Facts, HostFacts, Limitation, LimitationKind, NvmeController, Register,
    UnknownRegisters,
};

pub use path::{Path, PathClass};

/// A function's place in [`Tree::nodes`]: an index that only a tree hands
/// out, so a count, a depth or a position in another list cannot be
/// mistaken for one. `tree.nodes[id]` and [`Tree::ids`] use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct NodeId(u32);

impl NodeId {
    /// The node at `index` of [`Tree::nodes`] (a tree has fewer than 2^32).
    pub fn new(index: usize) -> Self {
        NodeId(u32::try_from(index).expect("fewer than 2^32 functions"))
    }

    /// Its position in [`Tree::nodes`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

// A table with one entry per node (the tree's own, or a stage's beside
// it: views, classes, rectangles) is indexed by the node's id.
impl<T> std::ops::Index<NodeId> for Vec<T> {
    type Output = T;
    fn index(&self, id: NodeId) -> &T {
        &self[id.index()]
    }
}

impl<T> std::ops::IndexMut<NodeId> for Vec<T> {
    fn index_mut(&mut self, id: NodeId) -> &mut T {
        &mut self[id.index()]
    }
}

impl<T> std::ops::Index<NodeId> for [T] {
    type Output = T;
    fn index(&self, id: NodeId) -> &T {
        &self[id.index()]
    }
}

impl<T> std::ops::IndexMut<NodeId> for [T] {
    fn index_mut(&mut self, id: NodeId) -> &mut T {
        &mut self[id.index()]
    }
}

/// What a function is in the tree.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    RootPort,
    SwitchUpstreamPort,
    SwitchDownstreamPort,
    Endpoint,
    LegacyEndpoint,
    RcIntegratedEndpoint,
    RcEventCollector,
    PcieToPciBridge,
    PciToPcieBridge,
    /// A conventional PCI-to-PCI bridge (no PCIe capability).
    PciBridge,
    /// The host bridge's own function on the root bus (class 06 00).
    HostBridgeDevice,
    /// A conventional PCI function (no PCIe capability).
    PciDevice,
}

impl Role {
    pub fn is_bridge(&self) -> bool {
        matches!(
            self,
            Role::RootPort
                | Role::SwitchUpstreamPort
                | Role::SwitchDownstreamPort
                | Role::PcieToPciBridge
                | Role::PciToPcieBridge
                | Role::PciBridge
        )
    }

    /// Functions that can master DMA to a peer (P2P clients/providers).
    pub fn is_endpoint(&self) -> bool {
        matches!(
            self,
            Role::Endpoint | Role::LegacyEndpoint | Role::RcIntegratedEndpoint | Role::PciDevice
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            Role::RootPort => "root port",
            Role::SwitchUpstreamPort => "switch upstream",
            Role::SwitchDownstreamPort => "switch downstream",
            Role::Endpoint => "endpoint",
            Role::LegacyEndpoint => "legacy endpoint",
            Role::RcIntegratedEndpoint => "RC integrated endpoint",
            Role::RcEventCollector => "RC event collector",
            Role::PcieToPciBridge => "PCIe-to-PCI bridge",
            Role::PciToPcieBridge => "PCI-to-PCIe bridge",
            Role::PciBridge => "PCI bridge",
            Role::HostBridgeDevice => "host bridge",
            Role::PciDevice => "PCI device",
        }
    }
}

/// Link speed and width, from the PCIe capability or, without root, from
/// the world-readable sysfs attributes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkState {
    pub speed_gts: Option<f64>,
    pub width: Option<u8>,
    pub max_speed_gts: Option<f64>,
    pub max_width: Option<u8>,
    /// `config` or `sysfs`.
    pub source: &'static str,
    /// What the other end of the link can do (the device below a
    /// downstream-facing port, the port above anything else), when known.
    pub partner_max_speed_gts: Option<f64>,
    pub partner_max_width: Option<u8>,
}

impl LinkState {
    /// A link that trained below what the port can do. A link that is down
    /// (width 0) is not called degraded.
    ///
    /// A link trains to what both ends can do, so the bound is the lower of
    /// the two ends' capabilities: a x4 card in a x16 slot is not degraded.
    pub fn degraded(&self) -> bool {
        let speed_bound = min_known(self.max_speed_gts, self.partner_max_speed_gts);
        let width_bound = min_known(
            self.max_width.map(f64::from),
            self.partner_max_width.map(f64::from),
        );
        let slower = matches!((self.speed_gts, speed_bound), (Some(s), Some(m)) if s + 0.01 < m);
        let narrower = matches!((self.width, width_bound), (Some(w), Some(m)) if f64::from(w) < m);
        self.is_up() && (slower || narrower)
    }

    pub fn is_up(&self) -> bool {
        self.width.is_some_and(|w| w > 0)
    }

    /// Generation number for a speed in GT/s (2.5 → 1 ... 64 → 6).
    pub fn generation(speed_gts: f64) -> Option<u8> {
        [2.5, 5.0, 8.0, 16.0, 32.0, 64.0]
            .iter()
            .position(|&s| (s - speed_gts).abs() < 0.01)
            .map(|i| i as u8 + 1)
    }

    /// `Gen4 x16`, with ` (capable of Gen5 x16)` when degraded.
    pub fn describe(&self) -> String {
        let gen_of = |s: Option<f64>| match s {
            Some(s) => Self::generation(s)
                .map(|g| format!("Gen{g}"))
                .unwrap_or_else(|| format!("{s} GT/s")),
            None => "Gen?".to_string(),
        };
        let width = |w: Option<u8>| w.map(|w| format!("x{w}")).unwrap_or_else(|| "x?".into());
        if !self.is_up() && self.width.is_some() {
            return format!(
                "link down (capable of {} {})",
                gen_of(self.max_speed_gts),
                width(self.max_width)
            );
        }
        let now = format!("{} {}", gen_of(self.speed_gts), width(self.width));
        if self.degraded() {
            format!(
                "{now} (degraded; capable of {} {})",
                gen_of(self.max_speed_gts),
                width(self.max_width)
            )
        } else {
            now
        }
    }
}

/// One PCI function in the tree.
#[derive(Debug, Clone)]
pub struct Node {
    pub facts: DeviceFacts,
    pub caps: Decoded,
    pub parent: Option<NodeId>,
    pub children: Vec<NodeId>,
    /// Index into [`Tree::host_bridges`].
    pub host_bridge: usize,
    pub role: Role,
    /// True when the role was guessed from the tree's shape because the
    /// PCIe capability could not be read (not root).
    pub role_inferred: bool,
    /// Index into [`Tree::switches`] for switch ports.
    pub switch: Option<usize>,
    /// Bridges above this function (0 directly below the host bridge).
    pub depth: usize,
    pub link: Option<LinkState>,
}

impl Node {
    pub fn bdf(&self) -> Bdf {
        self.facts.bdf
    }

    pub fn port_type(&self) -> Option<PortType> {
        self.caps.express.as_ref().map(|e| e.port_type)
    }

    /// PCIe Device Control, when it was read (an evidence file's `-v` text
    /// lists the capability without it).
    pub fn dev_ctl(&self) -> Option<&pci::DevCtl> {
        if self.facts.unknown_registers.contains(Register::DevCtl) {
            return None;
        }
        self.caps.express.as_ref().map(|e| &e.dev_ctl)
    }

    /// A short human name: the pci.ids device name, else `vvvv:dddd`.
    pub fn name(&self) -> String {
        if self.facts.missing {
            return "(not in the input; registers unknown)".to_string();
        }
        match (&self.facts.device_name, &self.facts.vendor_name) {
            (Some(d), Some(v)) => format!("{v} {d}"),
            // An evidence file's name, whole, as lspci printed it.
            (None, Some(v))
                if self.facts.device.is_none()
                    || self.facts.source != crate::scan::Source::Sysfs =>
            {
                v.clone()
            }
            (None, Some(v)) => format!("{v} device {:04x}", self.facts.device.unwrap_or(0)),
            _ => format!(
                "{:04x}:{:04x}",
                self.facts.vendor.unwrap_or(0xffff),
                self.facts.device.unwrap_or(0xffff)
            ),
        }
    }
}

/// A host bridge: the root of one PCI hierarchy (one root bus).
#[derive(Debug, Clone, Serialize)]
pub struct HostBridge {
    /// As sysfs names it: `pci0000:00`.
    pub id: String,
    pub domain: u32,
    pub bus: u8,
    /// Functions on the root bus, by address.
    #[serde(skip)]
    pub root_functions: Vec<NodeId>,
    /// The first function on the root bus (lowest devfn), which the
    /// kernel's P2PDMA whitelist looks at (pci_host_bridge_dev()).
    #[serde(skip)]
    pub first_function: Option<NodeId>,
    pub numa_node: Option<i32>,
}

/// A PCIe switch: one upstream port and the downstream ports below it.
#[derive(Debug, Clone)]
pub struct Switch {
    pub upstream: NodeId,
    pub downstream: Vec<NodeId>,
}

/// The whole machine as a tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub host: HostFacts,
    pub nodes: Vec<Node>,
    pub host_bridges: Vec<HostBridge>,
    pub switches: Vec<Switch>,
    pub nvme: Vec<NvmeController>,
    pub kernel_log: Vec<String>,
    pub limitations: Vec<Limitation>,
    index: HashMap<Bdf, NodeId>,
}

impl Tree {
    /// Builds the tree from scanned facts.
    pub fn build(facts: Facts) -> Tree {
        let Facts {
            host,
            mut devices,
            nvme,
            kernel_log,
            mut limitations,
        } = facts;
        devices.sort_by_key(|d| d.bdf);
        let index: HashMap<Bdf, NodeId> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.bdf, NodeId::new(i)))
            .collect();

        // Host bridges, in address order.
        let mut hb_ids: BTreeMap<(u32, u8, String), usize> = BTreeMap::new();
        for d in &devices {
            let (domain, bus) = parse_host_bridge_id(&d.host_bridge).unwrap_or((d.bdf.domain, 0));
            hb_ids
                .entry((domain, bus, d.host_bridge.clone()))
                .or_insert(0);
        }
        let mut host_bridges: Vec<HostBridge> = Vec::new();
        let mut hb_index: HashMap<String, usize> = HashMap::new();
        for (i, ((domain, bus, id), _)) in hb_ids.into_iter().enumerate() {
            hb_index.insert(id.clone(), i);
            host_bridges.push(HostBridge {
                id,
                domain,
                bus,
                root_functions: Vec::new(),
                first_function: None,
                numa_node: None,
            });
        }

        let decoded = decode_all(&devices);
        let mut nodes: Vec<Node> = Vec::with_capacity(devices.len());
        let mut orphans = Vec::new();
        for (facts, caps) in devices.into_iter().zip(decoded) {
            let parent = facts.parent.and_then(|p| {
                let found = index.get(&p).copied();
                if found.is_none() {
                    orphans.push((facts.bdf, p));
                }
                found
            });
            let host_bridge = hb_index.get(&facts.host_bridge).copied().unwrap_or(0);
            let link = link_state(&facts, &caps);
            nodes.push(Node {
                caps,
                parent,
                children: Vec::new(),
                host_bridge,
                role: Role::PciDevice,
                role_inferred: false,
                switch: None,
                depth: 0,
                link,
                facts,
            });
        }
        for (child, parent) in orphans {
            limitations.push(Limitation {
                kind: LimitationKind::DeviceUnreadable,
                message: format!(
                    "{child}: its upstream bridge {parent} was not found among the PCI devices; it is drawn directly below its host bridge"
                ),
            });
        }
        for id in (0..nodes.len()).map(NodeId::new) {
            match nodes[id].parent {
                Some(p) => nodes[p].children.push(id),
                None => {
                    let hb = nodes[id].host_bridge;
                    if let Some(h) = host_bridges.get_mut(hb) {
                        h.root_functions.push(id);
                    }
                }
            }
        }
        for hb in &mut host_bridges {
            // Node ids follow address order, so the first is the lowest devfn.
            hb.first_function = hb.root_functions.first().copied();
            hb.numa_node = hb
                .root_functions
                .iter()
                .find_map(|&n| nodes[n].facts.numa_node);
        }

        // Roles, top-down so inference can look at the parent's role.
        let order = top_down(&nodes, &host_bridges);
        for &id in &order {
            let parent_role = nodes[id].parent.map(|p| nodes[p].role);
            let depth = nodes[id].parent.map(|p| nodes[p].depth + 1).unwrap_or(0);
            let bridge_below = nodes[id]
                .children
                .iter()
                .any(|&c| looks_like_bridge(&nodes[c]));
            let (role, inferred) = classify(&nodes[id], parent_role, bridge_below);
            let n = &mut nodes[id];
            n.role = role;
            n.role_inferred = inferred;
            n.depth = depth;
        }

        // The other end of each link: a port's first child below it, or the
        // port above a device.
        for id in (0..nodes.len()).map(NodeId::new) {
            let downstream_facing = matches!(
                nodes[id].role,
                Role::RootPort | Role::SwitchDownstreamPort | Role::PciToPcieBridge
            );
            let partner = if downstream_facing {
                nodes[id].children.first().copied()
            } else {
                nodes[id].parent
            };
            let Some(p) = partner else { continue };
            let Some((speed, width)) = nodes[p]
                .link
                .as_ref()
                .map(|l| (l.max_speed_gts, l.max_width))
            else {
                continue;
            };
            if let Some(l) = nodes[id].link.as_mut() {
                l.partner_max_speed_gts = speed;
                l.partner_max_width = width;
            }
        }

        let mut switches = Vec::new();
        for id in (0..nodes.len()).map(NodeId::new) {
            if nodes[id].role != Role::SwitchUpstreamPort {
                continue;
            }
            let downstream: Vec<NodeId> = nodes[id]
                .children
                .iter()
                .copied()
                .filter(|&c| nodes[c].role == Role::SwitchDownstreamPort)
                .collect();
            let s = switches.len();
            nodes[id].switch = Some(s);
            for &d in &downstream {
                nodes[d].switch = Some(s);
            }
            switches.push(Switch {
                upstream: id,
                downstream,
            });
        }

        Tree {
            host,
            nodes,
            host_bridges,
            switches,
            nvme,
            kernel_log,
            limitations,
            index,
        }
    }

    pub fn find(&self, bdf: Bdf) -> Option<NodeId> {
        self.index.get(&bdf).copied()
    }

    /// Every node's id, in [`Tree::nodes`] order.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = NodeId> + ExactSizeIterator + use<> {
        (0..self.nodes.len()).map(NodeId::new)
    }

    /// Every node with its id, in [`Tree::nodes`] order.
    pub fn nodes_with_ids(&self) -> impl DoubleEndedIterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (NodeId::new(i), n))
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The upstream bridges of `id`, nearest first.
    pub fn ancestors(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut cur = self.nodes[id].parent;
        while let Some(p) = cur {
            if out.len() > self.nodes.len() {
                break; // cannot happen with parents from sysfs paths; stay safe
            }
            out.push(p);
            cur = self.nodes[p].parent;
        }
        out
    }

    /// Node ids in display order: each host bridge's root functions, then
    /// depth first.
    pub fn display_order(&self) -> Vec<NodeId> {
        top_down_dfs(&self.nodes, &self.host_bridges)
    }

    /// The path between two functions.
    pub fn path(&self, a: NodeId, b: NodeId) -> Path {
        Path::between(self, a, b)
    }

    /// True when any function's config space could not be read in full.
    pub fn config_truncated(&self) -> bool {
        self.limitations
            .iter()
            .any(|l| l.kind == LimitationKind::ConfigTruncated)
    }
}

/// Every function's config space decoded, on several threads when there
/// are many (it is the bulk of building a large tree).
fn decode_all(devices: &[DeviceFacts]) -> Vec<Decoded> {
    let decode = |part: &[DeviceFacts]| -> Vec<Decoded> {
        part.iter()
            .map(|d| {
                let mut caps = pci::decode(&d.config);
                forget_unknown(&mut caps, d.unknown_registers);
                caps
            })
            .collect()
    };
    let threads = crate::threads_for(devices.len());
    if threads == 1 {
        return decode(devices);
    }
    let chunk = devices.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .chunks(chunk)
            .map(|part| s.spawn(move || decode(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Registers an evidence file did not show hold placeholder bytes in the
/// config it was rebuilt into: drop what was decoded from them, so they
/// read as unknown (None) everywhere after, never as zero. Device Control
/// is not optional in [`Decoded`]: [`Node::dev_ctl`] answers for it.
fn forget_unknown(caps: &mut Decoded, unknown: UnknownRegisters) {
    if unknown.is_empty() {
        return;
    }
    if let Some(e) = caps.express.as_mut() {
        if unknown.contains(Register::Link) {
            e.link = None;
        }
        if unknown.contains(Register::DevCtl2) {
            e.dev_cap2 = None;
            e.dev_ctl2 = None;
        }
    }
    if unknown.contains(Register::AcsCtrl)
        && let Some(a) = caps.acs.as_mut()
    {
        a.ctrl = None;
    }
    if unknown.contains(Register::AerStatus) {
        caps.aer = None;
    }
    if unknown.contains(Register::AtsCtrl) {
        caps.ats = None;
    }
    if unknown.contains(Register::Command) {
        caps.command = None;
    }
    if unknown.contains(Register::Subsystem) {
        caps.subsystem = None;
    }
}

fn min_known(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn parse_host_bridge_id(id: &str) -> Option<(u32, u8)> {
    let (dom, bus) = id.strip_prefix("pci")?.split_once(':')?;
    Some((
        u32::from_str_radix(dom, 16).ok()?,
        u8::from_str_radix(bus, 16).ok()?,
    ))
}

fn top_down(nodes: &[Node], hbs: &[HostBridge]) -> Vec<NodeId> {
    // Breadth first is enough for "parents before children".
    let mut out: Vec<NodeId> = hbs.iter().flat_map(|h| h.root_functions.clone()).collect();
    let mut i = 0;
    while i < out.len() {
        let id = out[i];
        out.extend(nodes[id].children.iter().copied());
        i += 1;
    }
    out
}

fn top_down_dfs(nodes: &[Node], hbs: &[HostBridge]) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(nodes.len());
    for hb in hbs {
        let mut stack: Vec<NodeId> = hb.root_functions.iter().rev().copied().collect();
        while let Some(id) = stack.pop() {
            out.push(id);
            stack.extend(nodes[id].children.iter().rev().copied());
        }
    }
    out
}

/// A bridge header, or a bridge class code where the header is unknown.
fn looks_like_bridge(node: &Node) -> bool {
    node.caps.is_bridge() || node.facts.class.unwrap_or(0) >> 8 == 0x0604
}

/// `bridge_below`: some function directly below this one is a bridge (a
/// switch's upstream port always has its downstream ports below it).
fn classify(node: &Node, parent_role: Option<Role>, bridge_below: bool) -> (Role, bool) {
    let class = node.facts.class.unwrap_or(0);
    if let Some(e) = &node.caps.express {
        let role = match e.port_type {
            PortType::Endpoint => Role::Endpoint,
            PortType::LegacyEndpoint => Role::LegacyEndpoint,
            PortType::RootPort => Role::RootPort,
            PortType::UpstreamPort => Role::SwitchUpstreamPort,
            PortType::DownstreamPort => Role::SwitchDownstreamPort,
            PortType::PcieToPciBridge => Role::PcieToPciBridge,
            PortType::PciToPcieBridge => Role::PciToPcieBridge,
            PortType::RcIntegratedEndpoint => Role::RcIntegratedEndpoint,
            PortType::RcEventCollector => Role::RcEventCollector,
            PortType::Unknown(_) if node.caps.is_bridge() => Role::PciBridge,
            PortType::Unknown(_) => Role::Endpoint,
        };
        return (role, false);
    }
    let is_bridge = looks_like_bridge(node);
    if class >> 8 == 0x0600 && node.parent.is_none() {
        return (Role::HostBridgeDevice, false);
    }
    if node.caps.capabilities_readable {
        // We saw the whole capability list and there is no PCIe capability:
        // a conventional PCI function.
        let role = if is_bridge {
            Role::PciBridge
        } else {
            Role::PciDevice
        };
        return (role, false);
    }
    // Not root: only 64 bytes. Guess from the shape of the tree.
    let role = if is_bridge {
        match parent_role {
            None => Role::RootPort,
            // Below a downstream-facing port sits a switch's upstream port
            // only if ports hang below it; a bridge with only endpoints
            // below is a PCIe-to-PCI bridge (a BMC's VGA bridge, say),
            // never half a switch.
            Some(Role::RootPort | Role::SwitchDownstreamPort) if bridge_below => {
                Role::SwitchUpstreamPort
            }
            Some(Role::RootPort | Role::SwitchDownstreamPort) => Role::PcieToPciBridge,
            Some(Role::SwitchUpstreamPort) => Role::SwitchDownstreamPort,
            Some(_) => Role::PciBridge,
        }
    } else {
        Role::Endpoint
    };
    (role, true)
}

fn link_state(facts: &DeviceFacts, caps: &Decoded) -> Option<LinkState> {
    if let Some(link) = caps.express.as_ref().and_then(|e| e.link.as_ref()) {
        return Some(LinkState {
            speed_gts: link.status.speed.gts(),
            width: Some(link.status.width),
            max_speed_gts: link.cap.max_speed.gts(),
            max_width: Some(link.cap.max_width),
            source: "config",
            partner_max_speed_gts: None,
            partner_max_width: None,
        });
    }
    let a = &facts.link_attributes;
    if a.current_speed_gts.is_some() || a.current_width.is_some() || a.max_width.is_some() {
        return Some(LinkState {
            speed_gts: a.current_speed_gts,
            width: a.current_width,
            max_speed_gts: a.max_speed_gts,
            max_width: a.max_width,
            source: "sysfs",
            partner_max_speed_gts: None,
            partner_max_width: None,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::LinkState;

    fn link(speed: f64, width: u8, max: (f64, u8), partner: Option<(f64, u8)>) -> LinkState {
        LinkState {
            speed_gts: Some(speed),
            width: Some(width),
            max_speed_gts: Some(max.0),
            max_width: Some(max.1),
            source: "config",
            partner_max_speed_gts: partner.map(|p| p.0),
            partner_max_width: partner.map(|p| p.1),
        }
    }

    #[test]
    fn degraded_is_below_what_both_ends_can_do() {
        // A Gen4 x16 GPU trained at Gen4 x8: degraded whoever the partner is.
        assert!(link(16.0, 8, (16.0, 16), Some((16.0, 16))).degraded());
        // A x4 card in a x16 slot, seen from the slot: not degraded.
        assert!(!link(16.0, 4, (16.0, 16), Some((16.0, 4))).degraded());
        // A Gen4 card behind a Gen3 port runs at Gen3: not degraded.
        assert!(!link(8.0, 4, (16.0, 4), Some((8.0, 4))).degraded());
        // Partner unknown: judge by this end alone.
        assert!(link(8.0, 4, (16.0, 4), None).degraded());
        // A link that is down is not degraded.
        assert!(!link(2.5, 0, (16.0, 4), None).degraded());
        assert_eq!(
            link(16.0, 8, (16.0, 16), None).describe(),
            "Gen4 x8 (degraded; capable of Gen4 x16)"
        );
    }
}
