//! A mirror of the kernel's P2PDMA decision: `calc_map_type_and_dist()` in
//! drivers/pci/p2pdma.c, with `pci_bridge_has_acs_redir()`,
//! `cpu_supports_p2pdma()`, `host_bridge_whitelist()`,
//! `__host_bridge_whitelist()` and `pci_host_bridge_dev()`.
//!
//! It is a pure function over a small [`P2pView`] of the machine, so a table
//! of hand-built cases can drive every branch without sysfs;
//! [`P2pView::from_tree`] builds the view from a scanned [`Tree`].
//!
//! Corners the kernel has and this mirrors:
//! - the walk starts at the provider *itself* and checks every device it
//!   visits for ACS redirect, endpoints included (the kernel tests
//!   `pdev->acs_cap`, not whether the device is a bridge); the common
//!   upstream device is checked on the provider's walk, the client's walk
//!   stops below it;
//! - two functions of one device below a bridge are distance 2, two devices
//!   below one switch distance 4, one function distance 0 (and it is still
//!   checked for redirect);
//! - with no common upstream device the distance counts every device on
//!   both chains (each function plus all its upstream bridges), and the ACS
//!   bits seen on the way are neither printed nor used;
//! - the whitelist is looked up on the *first device of the root bus*, and
//!   only if it is devfn 00.0 or a Root Port; REQ_SAME_HOST_BRIDGE entries
//!   only admit pairs below one host bridge, and that refusal is silent;
//! - `Host bridge not in P2PDMA whitelist` is printed only when ACS redirect
//!   brought the pair to the host-bridge test, and the second host bridge is
//!   not looked at when the first fails (`&&` short-circuits);
//! - the ACS list lives in a 128-byte buffer: a long list is cut.

use std::fmt;

use serde::Serialize;

use super::acs_params::{AcsParams, CmdlineEffect, DeviceIdent, effect_on};
use super::kernel::{KernelModel, WhitelistEntry};
use crate::pci::{AcsFlags, Bdf, PortType};
use crate::topology::{NodeId, Tree};

/// `enum pci_p2pdma_map_type` (the values a decision can take).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MapType {
    /// PCI_P2PDMA_MAP_BUS_ADDR: the devices are programmed with PCI bus
    /// addresses; the traffic turns around below the common upstream bridge.
    BusAddr,
    /// PCI_P2PDMA_MAP_THRU_HOST_BRIDGE: normal DMA mapping (through the
    /// IOMMU when one translates); the traffic goes through the root complex.
    ThruHostBridge,
    /// PCI_P2PDMA_MAP_NOT_SUPPORTED: the kernel refuses the mapping.
    NotSupported,
}

impl MapType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MapType::BusAddr => "bus_addr",
            MapType::ThruHostBridge => "thru_host_bridge",
            MapType::NotSupported => "not_supported",
        }
    }

    /// The kernel's constant name.
    pub fn kernel_name(&self) -> &'static str {
        match self {
            MapType::BusAddr => "PCI_P2PDMA_MAP_BUS_ADDR",
            MapType::ThruHostBridge => "PCI_P2PDMA_MAP_THRU_HOST_BRIDGE",
            MapType::NotSupported => "PCI_P2PDMA_MAP_NOT_SUPPORTED",
        }
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the kernel sees of one function's ACS Control register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AcsState {
    /// No ACS capability the kernel can find (`dev->acs_cap == 0`).
    Absent,
    /// The ACS Control register as the kernel reads it.
    Control { ctrl: AcsFlags },
    /// The register could not be read (not root). `cmdline_clears` is true
    /// when `pci=disable_acs_redir=`/`config_acs=` name the device in a way
    /// that leaves RR, CR and EC clear whatever the firmware set (at boot:
    /// a later `setpci` is not seen). `groups` is what the IOMMU groups
    /// (world-readable) say of the port: Some(true) when its devices sit in
    /// groups of their own, so pci_acs_path_enabled() held and Linux's
    /// pci_std_enable_acs() had set RR and CR (where offered); Some(false)
    /// when a device below it shares the port's group (no ACS isolation).
    /// Either way the verdict stays uncertain.
    Unknown {
        cmdline_clears: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        groups: Option<bool>,
    },
}

impl AcsState {
    /// `pci_bridge_has_acs_redir()`: Some(true) with RR, CR or EC set,
    /// None when it cannot be known (never from the command line or the
    /// IOMMU groups alone: those are inferences, see [`Self::assumed`]).
    pub fn redirects(&self) -> Option<bool> {
        match self {
            AcsState::Absent => Some(false),
            AcsState::Control { ctrl } => Some(ctrl.redirects()),
            AcsState::Unknown { .. } => None,
        }
    }

    /// The best guess where the register could not be read: the command
    /// line's clearing wins (applied after pci_std_enable_acs() at boot),
    /// then the IOMMU groups, then "no redirect".
    pub fn assumed(&self) -> bool {
        match self {
            AcsState::Unknown {
                cmdline_clears: true,
                ..
            } => false,
            AcsState::Unknown { groups, .. } => groups.unwrap_or(false),
            _ => self.redirects().unwrap_or(false),
        }
    }

    pub fn ctrl(&self) -> Option<AcsFlags> {
        match self {
            AcsState::Control { ctrl } => Some(*ctrl),
            _ => None,
        }
    }
}

/// One PCI function as the P2PDMA code sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionView {
    pub bdf: Bdf,
    /// Index of `pci_upstream_bridge()`, None on a root bus.
    pub upstream: Option<NodeId>,
    /// Index into [`P2pView::host_bridges`].
    pub host_bridge: usize,
    pub acs: AcsState,
    /// The bound driver: the kernel prefixes its messages with it (`pci`
    /// when none is bound).
    pub driver: Option<String>,
    /// False when where the function sits is not known: an evidence file
    /// (plain `lspci`) shows bridges without their bus numbers, so the
    /// upstream chain above is a guess.
    pub placed: bool,
}

/// The first device on a host bridge's root bus (`pci_host_bridge_dev()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstDevice {
    pub bdf: Bdf,
    pub vendor: u16,
    pub device: u16,
    /// Some(true) for a PCIe Root Port; None when the port type could not
    /// be read.
    pub root_port: Option<bool>,
    /// False when the vendor and device ID are unknown (an lspci text
    /// without -nn or hex): the whitelist cannot be looked up.
    pub id_known: bool,
    pub driver: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostBridgeView {
    /// `pci0000:00`
    pub id: String,
    pub first_device: Option<FirstDevice>,
}

/// What `cpu_supports_p2pdma()` looks at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuView {
    /// `vendor_id` of CPU 0 (`AuthenticAMD`).
    pub vendor: Option<String>,
    /// `cpu family` (c->x86).
    pub family: Option<u32>,
    /// False when the CPU facts could not be read at all.
    pub known: bool,
}

impl CpuView {
    /// x86 AMD of family 0x17 (Zen) or newer. Hygon is its own vendor to
    /// the kernel (X86_VENDOR_HYGON) and does not count.
    pub fn amd_zen_or_newer(&self) -> bool {
        self.vendor.as_deref() == Some("AuthenticAMD") && self.family.is_some_and(|f| f >= 0x17)
    }
}

/// The machine, as much as the P2PDMA decision needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct P2pView {
    pub functions: Vec<FunctionView>,
    pub host_bridges: Vec<HostBridgeView>,
    pub cpu: CpuView,
    /// Some(reason) when no client can map P2P memory at all:
    /// dma_pci_p2pdma_supported() (kernel/dma/mapping.c) is false for DMA
    /// ops other than dma-direct and the default IOMMU ops (Xen's swiotlb
    /// ops in a PV dom0 or PV guest), so the NVMe driver never sets the
    /// queue's P2PDMA flag and O_DIRECT into p2pmem fails with EREMOTEIO in
    /// get_user_pages before any map type is computed.
    #[serde(default)]
    pub client_dma_unsupported: Option<String>,
    /// Some(reason) when the kernel has no P2PDMA code
    /// (CONFIG_PCI_P2PDMA not set): every pair is refused, whatever its
    /// path, and no verdict line is ever printed.
    #[serde(default)]
    pub kernel_without_p2pdma: Option<String>,
}

/// How one host bridge fared in `__host_bridge_whitelist()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostBridgeResult {
    /// A whitelist entry matched.
    Whitelisted,
    /// The first device is on no entry.
    NotListed,
    /// The entry has REQ_SAME_HOST_BRIDGE and the pair spans two host bridges.
    NeedsSameHostBridge,
    /// The root bus has no device 00.0 or Root Port first (nothing to look up).
    NoHostBridgeDevice,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostBridgeCheck {
    pub host_bridge: String,
    /// The device looked up, if any.
    pub first_device: Option<Bdf>,
    /// `vvvv:dddd` of that device.
    pub device_id: Option<String>,
    /// The whitelist entry that matched.
    pub entry: Option<WhitelistEntry>,
    pub result: HostBridgeResult,
}

/// The host-bridge test, when it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhitelistOutcome {
    pub admitted: bool,
    /// Both devices are below one host bridge.
    pub same_host_bridge: bool,
    /// The host bridges looked at, in the kernel's order (the second is
    /// skipped when the first fails).
    pub checks: Vec<HostBridgeCheck>,
}

/// A fact the decision needed and could not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Unknown {
    /// The ACS Control of a device on the walk could not be read; `assumed`
    /// is the redirect the verdict took for it, `basis` why.
    Acs {
        bdf: Bdf,
        #[serde(default)]
        assumed: bool,
        #[serde(default)]
        basis: AcsBasis,
    },
    /// Whether the first device of a root bus is a Root Port.
    FirstDeviceType { host_bridge: String, bdf: Bdf },
    /// The CPU vendor and family (cpu_supports_p2pdma()).
    Cpu,
    /// The vendor and device ID of the first device of a root bus (what
    /// the whitelist is looked up by).
    FirstDeviceId { host_bridge: String, bdf: Bdf },
    /// The kernel release: the newest kernel's whitelist and rules were
    /// assumed for a path through the host bridge.
    KernelRelease,
    /// Where the function sits (an evidence file showing bridges without
    /// their bus numbers).
    Placement { bdf: Bdf },
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unknown::Acs {
                bdf,
                assumed,
                basis,
            } => write!(
                f,
                "the ACS Control of {bdf} could not be read (taken as {}: {})",
                if *assumed { "redirect" } else { "no redirect" },
                basis.describe()
            ),
            Unknown::FirstDeviceType { host_bridge, bdf } => write!(
                f,
                "whether {bdf}, the first device of {host_bridge}, is a Root Port could not be read"
            ),
            Unknown::Cpu => f.write_str("the CPU vendor and family could not be read"),
            Unknown::FirstDeviceId { host_bridge, bdf } => write!(
                f,
                "the vendor and device ID of {bdf}, the first device of {host_bridge}, are not known"
            ),
            Unknown::KernelRelease => f.write_str(
                "the kernel release is not known (the newest kernel's whitelist was assumed)",
            ),
            Unknown::Placement { bdf } => write!(
                f,
                "where {bdf} sits is not known: the input shows neither the bus numbers of the bridges above it nor an lspci -t tree"
            ),
        }
    }
}

/// Where the assumption about an unreadable ACS Control came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcsBasis {
    /// Nothing known: "no redirect" assumed.
    #[default]
    Nothing,
    /// pci=disable_acs_redir=/config_acs= clear RR, CR and EC at boot.
    CommandLine,
    /// The IOMMU groups show ACS isolation below the port.
    GroupsIsolated,
    /// The IOMMU groups show a device below the port, or a sibling
    /// function, sharing its group.
    GroupsShared,
}

impl AcsBasis {
    pub fn describe(&self) -> &'static str {
        match self {
            AcsBasis::Nothing => "nothing is known, no redirect assumed",
            AcsBasis::CommandLine => {
                "the kernel command line clears RR, CR and EC at boot (a later setpci is not seen)"
            }
            AcsBasis::GroupsIsolated => {
                "its devices sit in IOMMU groups of their own: ACS isolation is in force, so Linux set RR and CR (pci_std_enable_acs())"
            }
            AcsBasis::GroupsShared => {
                "it shares an IOMMU group with a device below it or a sibling function: no ACS isolation, so no redirect assumed"
            }
        }
    }
}

/// One piece of a kernel log line: literal text, or the place where the
/// pair's own names go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Piece {
    Text(String),
    /// The client's `dev_printk` name: its driver (`pci` when none is
    /// bound) and its address, as in `nvme 0000:04:00.0`.
    Client,
    /// The provider's address.
    Provider,
}

/// A line the kernel logs about a pair, with the pair's names left as
/// places to fill: pairs that share a path share the line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KernelLine(pub Vec<Piece>);

impl KernelLine {
    /// `{client}: <text>` with `{provider}` where the provider is named.
    fn about_client(parts: &[Piece]) -> KernelLine {
        let mut v = vec![Piece::Client, Piece::Text(": ".into())];
        v.extend_from_slice(parts);
        KernelLine(v)
    }

    fn text(s: String) -> KernelLine {
        KernelLine(vec![Piece::Text(s)])
    }

    /// The line as the kernel prints it for one pair.
    pub fn render(&self, provider: Bdf, client: &str) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Client => out.push_str(client),
                Piece::Provider => out.push_str(&provider.to_string()),
            }
        }
        out
    }

    /// The line with `{client}` and `{provider}` where the pair's names go
    /// (the JSON form of a shared path).
    pub fn template(&self) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Client => out.push_str("{client}"),
                Piece::Provider => out.push_str("{provider}"),
            }
        }
        out
    }
}

impl Serialize for KernelLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.template())
    }
}

/// The client's name in the kernel's lines about it (`dev_printk`).
pub fn printk_name(driver: Option<&str>, bdf: Bdf) -> String {
    format!("{} {bdf}", driver.unwrap_or("pci"))
}

/// The kernel's decision for a path between a provider and a client. It
/// names neither end (the lines it logs leave their names as places to
/// fill), so every pair whose ends sit alike on the same path shares one:
/// see [`crate::diagnose::pairs`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub map_type: MapType,
    /// The distance the kernel computes (used to pick the closest provider).
    pub distance: u32,
    /// The nearest device both walks meet at (`a == bb`), if any.
    pub common_upstream: Option<Bdf>,
    /// Devices with ACS redirect between the two, in the order the kernel
    /// lists them (the provider's walk up to the common device, then the
    /// client's). Empty when there is no common upstream device: the kernel
    /// then neither prints nor uses them.
    pub acs_redirect: Vec<Bdf>,
    /// Host bridges involved when the host-bridge test ran (one, or two
    /// when the pair spans host bridges).
    pub host_bridges: Vec<String>,
    /// The whitelist lookup, when it ran (not when the CPU rule admitted).
    pub whitelist: Option<WhitelistOutcome>,
    /// cpu_supports_p2pdma() admitted the path through the host bridge.
    pub cpu_rule: bool,
    /// The lines the kernel logs on the first mapping (`pci_p2pdma_map_type()`
    /// calls with verbose set), without the timestamp, the pair's names
    /// left to fill ([`KernelLine::render`]).
    pub kernel_lines: Vec<KernelLine>,
    /// What could not be read; the verdict assumes what each entry says
    /// ("not a Root Port" for the first device).
    pub unknown: Vec<Unknown>,
    /// Why every mapping to this client fails before the map type matters
    /// (dma_pci_p2pdma_supported() false: Xen's swiotlb DMA ops); the map
    /// type is then not_supported and the kernel logs none of its lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
}

/// The kernel's decision for one (provider, client) pair: the path's
/// [`Verdict`] with the pair's names filled into the lines it logs.
#[derive(Debug, Clone, PartialEq)]
pub struct PairVerdict {
    pub provider: Bdf,
    pub client: Bdf,
    /// The lines the kernel logs on the first mapping, as it prints them.
    pub kernel_messages: Vec<String>,
    pub verdict: Verdict,
}

impl std::ops::Deref for PairVerdict {
    type Target = Verdict;
    fn deref(&self) -> &Verdict {
        &self.verdict
    }
}

/// Said wherever predicted kernel lines are shown.
pub const KERNEL_MESSAGES_NOTE: &str = "logged once, on the first mapping of this pair with verbose set (pci_p2pdma_map_type()); the verdict is then cached on the provider until its driver releases it, and a pair first computed by pci_p2pmem_find_many() (verbose off) is cached without any line";

impl Verdict {
    /// No fact was missing.
    pub fn certain(&self) -> bool {
        self.unknown.is_empty()
    }

    /// The traffic goes through the root complex (whether allowed or not).
    pub fn needs_host_bridge(&self) -> bool {
        self.map_type != MapType::BusAddr
    }
}

/// `seq_buf` of 128 bytes holding `"<bdf>;"` per device, then the final
/// `;` dropped: a list that does not fit is cut at 127 characters.
fn acs_list_text(list: &[Bdf]) -> String {
    let joined: String = list.iter().map(|b| format!("{b};")).collect();
    if joined.len() < 128 {
        joined[..joined.len().saturating_sub(1)].to_string()
    } else {
        joined[..127].to_string()
    }
}

impl P2pView {
    /// The device itself, then `pci_upstream_bridge()` up to the root bus.
    fn chain(&self, f: NodeId) -> Vec<NodeId> {
        let mut out = vec![f];
        let mut cur = self.functions[f].upstream;
        while let Some(p) = cur {
            if out.len() > self.functions.len() || out.contains(&p) {
                break; // a loop cannot come from sysfs; stay finite anyway
            }
            out.push(p);
            cur = self.functions[p].upstream;
        }
        out
    }

    pub fn find(&self, bdf: Bdf) -> Option<NodeId> {
        self.functions
            .iter()
            .position(|f| f.bdf == bdf)
            .map(NodeId::new)
    }

    /// `pci_host_bridge_dev()` and `__host_bridge_whitelist()`.
    fn host_bridge_allowed(
        &self,
        kernel: &KernelModel,
        hb: usize,
        same_host_bridge: bool,
        warn: bool,
        messages: &mut Vec<KernelLine>,
        unknown: &mut Vec<Unknown>,
    ) -> HostBridgeCheck {
        let view = &self.host_bridges[hb];
        let mut check = HostBridgeCheck {
            host_bridge: view.id.clone(),
            first_device: None,
            device_id: None,
            entry: None,
            result: HostBridgeResult::NoHostBridgeDevice,
        };
        let Some(root) = &view.first_device else {
            return check;
        };
        if root.bdf.devfn() != 0 {
            if !kernel.root_port_first_device {
                return check;
            }
            match root.root_port {
                Some(true) => {}
                Some(false) => return check,
                None => {
                    unknown.push(Unknown::FirstDeviceType {
                        host_bridge: view.id.clone(),
                        bdf: root.bdf,
                    });
                    return check;
                }
            }
        }
        check.first_device = Some(root.bdf);
        if !root.id_known {
            unknown.push(Unknown::FirstDeviceId {
                host_bridge: view.id.clone(),
                bdf: root.bdf,
            });
            check.result = HostBridgeResult::NotListed;
            return check;
        }
        check.device_id = Some(format!("{:04x}:{:04x}", root.vendor, root.device));
        for entry in &kernel.whitelist {
            if entry.vendor != root.vendor || !entry.device.matches(root.device) {
                continue;
            }
            check.entry = Some(entry.clone());
            check.result = if entry.same_host_bridge && !same_host_bridge {
                HostBridgeResult::NeedsSameHostBridge
            } else {
                HostBridgeResult::Whitelisted
            };
            return check;
        }
        if warn {
            messages.push(KernelLine::text(format!(
                "{}: Host bridge not in P2PDMA whitelist: {:04x}:{:04x}",
                printk_name(root.driver.as_deref(), root.bdf),
                root.vendor,
                root.device
            )));
        }
        check.result = HostBridgeResult::NotListed;
        check
    }

    /// `calc_map_type_and_dist(provider, client, &dist, verbose = true)`
    /// for one pair, the lines it logs as it prints them. `provider` and
    /// `client` index [`P2pView::functions`].
    pub fn calc_map_type_and_dist(
        &self,
        kernel: &KernelModel,
        provider: NodeId,
        client: NodeId,
    ) -> PairVerdict {
        let verdict = self.path_verdict(kernel, provider, client);
        let (pf, cf) = (&self.functions[provider], &self.functions[client]);
        let name = printk_name(cf.driver.as_deref(), cf.bdf);
        PairVerdict {
            provider: pf.bdf,
            client: cf.bdf,
            kernel_messages: verdict
                .kernel_lines
                .iter()
                .map(|l| l.render(pf.bdf, &name))
                .collect(),
            verdict,
        }
    }

    /// `calc_map_type_and_dist()`'s decision for the path between
    /// `provider` and `client`, naming neither: the pair's names stay
    /// places to fill in the lines the kernel logs.
    pub fn path_verdict(&self, kernel: &KernelModel, provider: NodeId, client: NodeId) -> Verdict {
        let pf = &self.functions[provider];
        let cf = &self.functions[client];
        let provider_chain = self.chain(provider);
        let client_chain = self.chain(client);
        let mut unknown = Vec::new();
        let mut messages = Vec::new();
        let mut acs_list = Vec::new();
        for f in [pf, cf] {
            if !f.placed {
                unknown.push(Unknown::Placement { bdf: f.bdf });
            }
        }
        let check_acs = |f: NodeId, list: &mut Vec<Bdf>, unknown: &mut Vec<Unknown>| {
            let func = &self.functions[f];
            match func.acs.redirects() {
                Some(true) => list.push(func.bdf),
                Some(false) => {}
                None => {
                    let assumed = func.acs.assumed();
                    let basis = match func.acs {
                        AcsState::Unknown {
                            cmdline_clears: true,
                            ..
                        } => AcsBasis::CommandLine,
                        AcsState::Unknown {
                            groups: Some(true), ..
                        } => AcsBasis::GroupsIsolated,
                        AcsState::Unknown {
                            groups: Some(false),
                            ..
                        } => AcsBasis::GroupsShared,
                        _ => AcsBasis::Nothing,
                    };
                    if assumed {
                        list.push(func.bdf);
                    }
                    unknown.push(Unknown::Acs {
                        bdf: func.bdf,
                        assumed,
                        basis,
                    });
                }
            }
        };

        // while (a) { check a; look for a on the client's chain; a = up }
        let mut common = None;
        for (dist_a, &a) in provider_chain.iter().enumerate() {
            check_acs(a, &mut acs_list, &mut unknown);
            if let Some(dist_b) = client_chain.iter().position(|&bb| bb == a) {
                common = Some((a, dist_a, dist_b));
                break;
            }
        }

        let mut verdict = Verdict {
            map_type: MapType::ThruHostBridge,
            distance: 0,
            common_upstream: None,
            acs_redirect: Vec::new(),
            host_bridges: Vec::new(),
            whitelist: None,
            cpu_rule: false,
            kernel_lines: Vec::new(),
            unknown: Vec::new(),
            blocked_by: None,
        };
        let acs_redirects;
        match common {
            None => {
                // dist_a ran to the end of the provider's chain; dist_b is
                // the client's whole chain from the last inner walk.
                verdict.distance = (provider_chain.len() + client_chain.len()) as u32;
                // The bits seen on the way are not used: no common device.
                unknown.retain(|u| matches!(u, Unknown::Placement { .. }));
                acs_redirects = false;
            }
            Some((a, dist_a, dist_b)) => {
                // check_b_path_acs: the client's chain below the common device.
                for &bb in &client_chain[..dist_b] {
                    check_acs(bb, &mut acs_list, &mut unknown);
                }
                verdict.distance = (dist_a + dist_b) as u32;
                verdict.common_upstream = Some(self.functions[a].bdf);
                if acs_list.is_empty() {
                    verdict.map_type = MapType::BusAddr;
                    verdict.unknown = unknown;
                    return self.finish(verdict);
                }
                let list = if kernel.acs_list_128 {
                    acs_list_text(&acs_list)
                } else {
                    // Before 5.14 (e4ece59abd70) a PAGE_SIZE buffer: never cut.
                    let joined: Vec<String> = acs_list.iter().map(|b| b.to_string()).collect();
                    joined.join(";")
                };
                if !kernel.host_bridge_fallback {
                    // Before 5.4: upstream_bridge_distance() returned -2 and
                    // upstream_bridge_distance_warn() refused the pair.
                    messages.push(KernelLine::about_client(&[
                        Piece::Text("cannot be used for peer-to-peer DMA as ACS redirect is set between the client and provider (".into()),
                        Piece::Provider,
                        Piece::Text(")".into()),
                    ]));
                    messages.push(KernelLine::about_client(&[Piece::Text(format!(
                        "to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir={list}"
                    ))]));
                    verdict.acs_redirect = acs_list;
                    verdict.map_type = MapType::NotSupported;
                    verdict.kernel_lines = messages;
                    verdict.unknown = unknown;
                    return self.finish(verdict);
                }
                messages.push(KernelLine::about_client(&[
                    Piece::Text("ACS redirect is set between the client and provider (".into()),
                    Piece::Provider,
                    Piece::Text(")".into()),
                ]));
                messages.push(KernelLine::about_client(&[Piece::Text(format!(
                    "to disable ACS redirect for this path, add the kernel parameter: pci=disable_acs_redir={list}"
                ))]));
                verdict.acs_redirect = acs_list;
                acs_redirects = true;
            }
        }

        if !kernel.host_bridge_fallback {
            // Before 5.4 no common upstream bridge: root_complex_whitelist()
            // (5.2, AMD 0x1450 at devfn 00.0 of both root buses) or refused.
            // An admitted pair got 0x1000 + the distance and was mapped with
            // bus addresses like any other (no map types yet).
            let admitted = kernel.root_complex_whitelist
                && self.root_complex_whitelisted(pf.host_bridge)
                && self.root_complex_whitelisted(cf.host_bridge);
            if admitted {
                verdict.map_type = MapType::BusAddr;
                verdict.distance += 0x1000;
            } else {
                messages.push(KernelLine::about_client(&[
                    Piece::Text(
                        "cannot be used for peer-to-peer DMA as the client and provider (".into(),
                    ),
                    Piece::Provider,
                    Piece::Text(") do not share an upstream bridge".into()),
                ]));
                verdict.map_type = MapType::NotSupported;
            }
            verdict.kernel_lines = messages;
            verdict.unknown = unknown;
            return self.finish(verdict);
        }

        // map_through_host_bridge:
        let (ha, hb) = (pf.host_bridge, cf.host_bridge);
        verdict.host_bridges.push(self.host_bridges[ha].id.clone());
        if hb != ha {
            verdict.host_bridges.push(self.host_bridges[hb].id.clone());
        }
        if kernel.assumed {
            unknown.push(Unknown::KernelRelease);
        }
        if kernel.cpu_rule && !self.cpu.known {
            unknown.push(Unknown::Cpu);
        }
        if kernel.cpu_rule && self.cpu.amd_zen_or_newer() {
            verdict.cpu_rule = true;
        } else {
            let mut checks = Vec::new();
            let admitted = if ha == hb {
                let c = self.host_bridge_allowed(
                    kernel,
                    ha,
                    true,
                    acs_redirects && kernel.whitelist_warning,
                    &mut messages,
                    &mut unknown,
                );
                let ok = c.result == HostBridgeResult::Whitelisted;
                checks.push(c);
                ok
            } else {
                let first = self.host_bridge_allowed(
                    kernel,
                    ha,
                    false,
                    acs_redirects && kernel.whitelist_warning,
                    &mut messages,
                    &mut unknown,
                );
                let ok_a = first.result == HostBridgeResult::Whitelisted;
                checks.push(first);
                ok_a && {
                    let second = self.host_bridge_allowed(
                        kernel,
                        hb,
                        false,
                        acs_redirects && kernel.whitelist_warning,
                        &mut messages,
                        &mut unknown,
                    );
                    let ok_b = second.result == HostBridgeResult::Whitelisted;
                    checks.push(second);
                    ok_b
                }
            };
            verdict.whitelist = Some(WhitelistOutcome {
                admitted,
                same_host_bridge: ha == hb,
                checks,
            });
            if !admitted {
                messages.push(KernelLine::about_client(&[
                    Piece::Text(
                        "cannot be used for peer-to-peer DMA as the client and provider (".into(),
                    ),
                    Piece::Provider,
                    Piece::Text(
                        ") do not share an upstream bridge or whitelisted host bridge".into(),
                    ),
                ]));
                verdict.map_type = MapType::NotSupported;
            }
        }
        verdict.kernel_lines = messages;
        verdict.unknown = unknown;
        self.finish(verdict)
    }

    /// A client whose DMA ops cannot map P2P memory fails every mapping
    /// whatever the map type (dma_pci_p2pdma_supported()).
    fn finish(&self, mut verdict: Verdict) -> Verdict {
        // Without CONFIG_PCI_P2PDMA there is no P2PDMA code at all: no
        // provider registers memory and no mapping is made, whatever the
        // path (the map type computed above is what a P2PDMA kernel would
        // decide; the pair is refused here).
        if let Some(why) = &self.kernel_without_p2pdma {
            verdict.blocked_by = Some(why.clone());
            verdict.map_type = MapType::NotSupported;
            verdict.kernel_lines.clear();
            return verdict;
        }
        if let Some(why) = &self.client_dma_unsupported {
            verdict.blocked_by = Some(format!("no client can map P2P memory: {why}"));
            verdict.map_type = MapType::NotSupported;
            verdict.kernel_lines.clear();
        }
        verdict
    }

    /// 5.2-5.3 root_complex_whitelist(): pci_get_slot(root bus, devfn 00.0)
    /// is AMD 0x1450.
    fn root_complex_whitelisted(&self, hb: usize) -> bool {
        self.host_bridges[hb]
            .first_device
            .as_ref()
            .is_some_and(|d| d.bdf.devfn() == 0 && d.vendor == 0x1022 && d.device == 0x1450)
    }

    /// Builds the view from a scanned tree. ACS Control is what config
    /// space shows (the kernel reads the live register at decision time);
    /// where it cannot be read, the command-line parameters tell what they
    /// can. Returns the command line's effect on each function too.
    pub fn from_tree(
        tree: &Tree,
        params: &AcsParams,
        kernel: &KernelModel,
    ) -> (P2pView, Vec<CmdlineEffect>) {
        let mut functions = Vec::with_capacity(tree.nodes.len());
        let mut effects = Vec::with_capacity(tree.nodes.len());
        // Domains with a bridge whose bus numbers are unknown: nobody's
        // place in them is certain.
        let unplaced: std::collections::BTreeSet<u32> = tree
            .nodes
            .iter()
            .filter(|n| {
                n.facts
                    .unknown_registers
                    .contains(crate::scan::Register::BusNumbers)
            })
            .map(|n| n.bdf().domain)
            .collect();
        for (id, node) in tree.nodes_with_ids() {
            let ident = DeviceIdent {
                chain: std::iter::once(id)
                    .chain(tree.ancestors(id))
                    .map(|n| tree.node(n).bdf())
                    .collect(),
                vendor: node.facts.vendor.unwrap_or(0xffff),
                device: node.facts.device.unwrap_or(0xffff),
                subsystem: node.caps.subsystem.unwrap_or((0, 0)),
            };
            let effect = if params.is_empty() {
                CmdlineEffect::default()
            } else {
                effect_on(params, &ident, kernel.config_acs)
            };
            let acs = acs_state(tree, id, &effect);
            functions.push(FunctionView {
                bdf: node.bdf(),
                upstream: node.parent,
                host_bridge: node.host_bridge,
                acs,
                driver: node.facts.driver.clone(),
                placed: !unplaced.contains(&node.bdf().domain),
            });
            effects.push(effect);
        }
        let host_bridges = tree
            .host_bridges
            .iter()
            .map(|hb| HostBridgeView {
                id: hb.id.clone(),
                first_device: hb.first_function.map(|f| {
                    let n = tree.node(f);
                    let root_port = match n.port_type() {
                        Some(t) => Some(t == PortType::RootPort),
                        None if n.caps.capabilities_readable => Some(false),
                        None => None,
                    };
                    FirstDevice {
                        bdf: n.bdf(),
                        vendor: n.facts.vendor.unwrap_or(0xffff),
                        device: n.facts.device.unwrap_or(0xffff),
                        root_port,
                        id_known: n.facts.vendor.is_some() && n.facts.device.is_some(),
                        driver: n.facts.driver.clone(),
                    }
                }),
            })
            .collect();
        let cpu = &tree.host.cpu;
        // An AMD CPU of unknown family (an evidence file: the vendor
        // inferred from the host bridge) may or may not be Zen.
        let known = match cpu.vendor.as_deref() {
            Some("AuthenticAMD") => cpu.family.is_some(),
            Some(_) => true,
            None => cpu.logical_cpus > 0,
        };
        let client_dma_unsupported = tree
            .host
            .hypervisor
            .as_ref()
            .and_then(|h| h.p2p_dma_blocker());
        let kernel_without_p2pdma = (tree.host.p2pdma_config == Some(false)).then(|| {
            format!(
                "the kernel{} is built without CONFIG_PCI_P2PDMA: no device offers P2P memory and no P2P mapping is made",
                tree.host
                    .kernel_release
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            )
        });
        let view = P2pView {
            kernel_without_p2pdma,
            client_dma_unsupported,
            functions,
            host_bridges,
            cpu: CpuView {
                vendor: cpu.vendor.clone(),
                family: cpu.family,
                known,
            },
        };
        (view, effects)
    }
}

/// Intel PCH root ports whose ACS lives outside the standard capability
/// (drivers/pci/quirks.c). None of them changes what P2PDMA reads:
/// - pci_quirk_intel_pch_acs_match() (Ibex Peak .. Wellsburg): no ACS
///   capability at all, isolation through a vendor register set by
///   pci_quirk_enable_intel_pch_acs(); `dev->acs_cap` is 0, so
///   pci_bridge_has_acs_redir() sees nothing.
/// - pci_quirk_intel_spt_pch_acs_match() (Sunrise Point 0xa110-0xa11f,
///   0xa167-0xa16a; Union Point 0xa290-0xa29f, 0xa2e7-0xa2ee; root ports
///   only; Cannon Lake is not in the list): the capability exists but its
///   Capability and Control registers are dwords, Control at +8
///   (INTEL_SPT_ACS_CTRL). pci_quirk_enable_intel_spt_pch_acs() and
///   pci_quirk_disable_intel_spt_pch_acs_redir() write +8;
///   pci_bridge_has_acs_redir() reads the word at acs_cap + 6, the upper
///   half of the capability dword. The config-space decoder reads that same
///   word, so the verdict mirrors the kernel; the IOMMU groups, fed by
///   pci_quirk_intel_spt_pch_acs() (pci_dev_specific_acs_enabled()), say
///   nothing about it.
///
/// The other pci_dev_acs_enabled[] quirks only answer pci_acs_enabled()
/// for IOMMU grouping and leave the register alone: not modelled (they
/// change the groups, which `groups_say()` therefore distrusts for the
/// PCH ports, not what P2PDMA reads). pci_disable_broken_acs_cap() (IDT
/// switches) only masks SV out of the cached capability Linux enables:
/// no P2P bit changes.
pub fn intel_pch_acs_quirk(vendor: u16, device: u16, root_port: bool) -> Option<&'static str> {
    if vendor != 0x8086 {
        return None;
    }
    let spt =
        matches!(device, 0xa110..=0xa11f | 0xa167..=0xa16a | 0xa290..=0xa29f | 0xa2e7..=0xa2ee);
    if spt && root_port {
        return Some("spt");
    }
    let pch = matches!(
        device,
        0x3b42..=0x3b51
            | 0x1c10..=0x1c1f
            | 0x1e10..=0x1e1f
            | 0x8c10..=0x8c1f
            | 0x9c10..=0x9c1b
            | 0x9c90..=0x9c9b
            | 0x1d10..=0x1d1e
            | 0x8d10..=0x8d1e
            | 0x8c90..=0x8c9e
    );
    pch.then_some("pch")
}

/// What the IOMMU groups say of an unreadable function's ACS (see
/// [`AcsState::Unknown`]): pci_device_group() puts a device in its
/// upstream port's group unless pci_acs_path_enabled() holds from that
/// port up, and functions of one multi-function device together unless
/// each has ACS. Ports with a quirk (isolation without the register
/// P2PDMA reads) are left unknown.
fn groups_say(tree: &Tree, id: NodeId) -> Option<bool> {
    let node = tree.node(id);
    let quirk = intel_pch_acs_quirk(
        node.facts.vendor.unwrap_or(0),
        node.facts.device.unwrap_or(0),
        node.role == crate::topology::Role::RootPort,
    );
    if quirk.is_some() {
        return None;
    }
    let own = node.facts.iommu_group?;
    if !node.children.is_empty() {
        let groups: Vec<Option<u32>> = node
            .children
            .iter()
            .map(|&c| tree.node(c).facts.iommu_group)
            .collect();
        if groups.contains(&Some(own)) {
            return Some(false);
        }
        return groups.iter().all(|g| g.is_some()).then_some(true);
    }
    // A function of a multi-function device: its siblings in the same slot.
    let bdf = node.bdf();
    let siblings: Vec<Option<u32>> = tree
        .nodes
        .iter()
        .filter(|n| {
            let b = n.bdf();
            b != bdf && n.parent == node.parent && b.bus == bdf.bus && b.device == bdf.device
        })
        .map(|n| n.facts.iommu_group)
        .collect();
    if siblings.is_empty() {
        return None;
    }
    if siblings.contains(&Some(own)) {
        return Some(false);
    }
    siblings.iter().all(|g| g.is_some()).then_some(true)
}

/// What the kernel's `dev->acs_cap` and ACS Control are for a node.
fn acs_state(tree: &Tree, id: NodeId, effect: &CmdlineEffect) -> AcsState {
    let node = tree.node(id);
    let unknown = || AcsState::Unknown {
        cmdline_clears: effect.redirect_without_register() == Some(false),
        groups: groups_say(tree, id),
    };
    match &node.caps.acs {
        Some(acs) => match acs.ctrl {
            Some(ctrl) => AcsState::Control { ctrl },
            None => unknown(),
        },
        // An evidence file that did not carry the extended space (a
        // 256-byte `lspci -xxx` dump of a PCIe function).
        None if node
            .facts
            .unknown_registers
            .contains(crate::scan::Register::AcsCtrl) =>
        {
            unknown()
        }
        // The whole extended space was read and has no ACS capability.
        None if node.caps.extended_readable => AcsState::Absent,
        // 65..4095 bytes: the kernel itself has cfg_size 256 (no ECAM
        // access), so pci_find_ext_capability() finds nothing either.
        None if node.facts.config.len() > 64 => AcsState::Absent,
        // A conventional PCI function has no extended space at all.
        None if node.caps.capabilities_readable && node.caps.express.is_none() => AcsState::Absent,
        None => unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acs_list_fits_in_128_bytes() {
        let list: Vec<Bdf> = (0..12u8).map(|i| Bdf::new(0, 0, i, 0)).collect();
        assert_eq!(acs_list_text(&list[..1]), "0000:00:00.0");
        assert_eq!(acs_list_text(&list[..2]), "0000:00:00.0;0000:00:01.0");
        // 9 entries: 117 bytes, fits.
        assert_eq!(acs_list_text(&list[..9]).len(), 116);
        // 10 or more: cut at 127 characters.
        let cut = acs_list_text(&list);
        assert_eq!(cut.len(), 127);
        assert!(cut.ends_with(";0000:00:09"));
    }
}
