//! PCI Express Capability (PCIe r6.0 §7.5.3), standard capability ID 0x10.
//!
//! Bit positions checked against pciutils `lib/header.h` (`PCI_EXP_*`) and
//! `ls-caps.c` (`cap_express*`).

use std::fmt;

use serde::{Serialize, Serializer};

use super::read::{bit, read_u16, read_u32};

// Register offsets within the capability.
const FLAGS: usize = 0x02; // PCI Express Capabilities Register, §7.5.3.2
const DEVCAP: usize = 0x04; // Device Capabilities, §7.5.3.3
const DEVCTL: usize = 0x08; // Device Control, §7.5.3.4
const LNKCAP: usize = 0x0c; // Link Capabilities, §7.5.3.6
const LNKCTL: usize = 0x10; // Link Control, §7.5.3.7
const LNKSTA: usize = 0x12; // Link Status, §7.5.3.8
const DEVCAP2: usize = 0x24; // Device Capabilities 2, §7.5.3.15
const DEVCTL2: usize = 0x28; // Device Control 2, §7.5.3.16

/// Device/Port Type, bits 7:4 of the PCI Express Capabilities Register
/// (PCIe r6.0 §7.5.3.2). Serialized as the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortType {
    /// PCI Express Endpoint, code 0b0000.
    Endpoint,
    /// Legacy PCI Express Endpoint, code 0b0001.
    LegacyEndpoint,
    /// Root Port of a Root Complex, code 0b0100.
    RootPort,
    /// Upstream Port of a switch, code 0b0101.
    UpstreamPort,
    /// Downstream Port of a switch, code 0b0110.
    DownstreamPort,
    /// PCI Express to PCI/PCI-X Bridge, code 0b0111.
    PcieToPciBridge,
    /// PCI/PCI-X to PCI Express Bridge, code 0b1000.
    PciToPcieBridge,
    /// Root Complex Integrated Endpoint, code 0b1001.
    RcIntegratedEndpoint,
    /// Root Complex Event Collector, code 0b1010.
    RcEventCollector,
    /// A reserved code, kept as read.
    Unknown(u8),
}

impl PortType {
    /// The port type for a 4-bit Device/Port Type code.
    pub fn from_code(code: u8) -> Self {
        match code {
            0x0 => PortType::Endpoint,
            0x1 => PortType::LegacyEndpoint,
            0x4 => PortType::RootPort,
            0x5 => PortType::UpstreamPort,
            0x6 => PortType::DownstreamPort,
            0x7 => PortType::PcieToPciBridge,
            0x8 => PortType::PciToPcieBridge,
            0x9 => PortType::RcIntegratedEndpoint,
            0xa => PortType::RcEventCollector,
            other => PortType::Unknown(other),
        }
    }

    /// The code this type is encoded as.
    pub fn code(&self) -> u8 {
        match self {
            PortType::Endpoint => 0x0,
            PortType::LegacyEndpoint => 0x1,
            PortType::RootPort => 0x4,
            PortType::UpstreamPort => 0x5,
            PortType::DownstreamPort => 0x6,
            PortType::PcieToPciBridge => 0x7,
            PortType::PciToPcieBridge => 0x8,
            PortType::RcIntegratedEndpoint => 0x9,
            PortType::RcEventCollector => 0xa,
            PortType::Unknown(c) => *c,
        }
    }

    /// The stable snake_case name used in JSON and text output.
    pub fn as_str(&self) -> &'static str {
        match self {
            PortType::Endpoint => "endpoint",
            PortType::LegacyEndpoint => "legacy_endpoint",
            PortType::RootPort => "root_port",
            PortType::UpstreamPort => "upstream_port",
            PortType::DownstreamPort => "downstream_port",
            PortType::PcieToPciBridge => "pcie_to_pci_bridge",
            PortType::PciToPcieBridge => "pci_to_pcie_bridge",
            PortType::RcIntegratedEndpoint => "rc_integrated_endpoint",
            PortType::RcEventCollector => "rc_event_collector",
            PortType::Unknown(_) => "unknown",
        }
    }

    /// A port whose link points away from the root complex: the kernel's
    /// `pcie_downstream_port()` (root port, switch downstream port, and a
    /// PCI/PCI-X to PCIe bridge).
    pub fn is_downstream_facing(&self) -> bool {
        matches!(
            self,
            PortType::RootPort | PortType::DownstreamPort | PortType::PciToPcieBridge
        )
    }

    /// Whether the Link registers are implemented: root-complex integrated
    /// endpoints and event collectors have no link (lspci's `cap_express`;
    /// reserved codes are decoded like lspci does, as having one).
    pub fn has_link(&self) -> bool {
        !matches!(
            self,
            PortType::RcIntegratedEndpoint | PortType::RcEventCollector
        )
    }
}

impl fmt::Display for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PortType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A link speed as the raw 4-bit code of Link Capabilities / Link Status
/// (PCIe r6.0 §7.5.3.6, §7.5.3.8). Serialized as GT/s, or null if unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkSpeed(pub u8);

impl LinkSpeed {
    /// Transfer rate in GT/s, as lspci's `link_speed()`.
    pub fn gts(&self) -> Option<f64> {
        match self.0 {
            1 => Some(2.5),
            2 => Some(5.0),
            3 => Some(8.0),
            4 => Some(16.0),
            5 => Some(32.0),
            6 => Some(64.0),
            _ => None,
        }
    }

    /// PCIe generation (1 for 2.5 GT/s ... 6 for 64 GT/s).
    pub fn generation(&self) -> Option<u8> {
        (1..=6).contains(&self.0).then_some(self.0)
    }
}

impl fmt::Display for LinkSpeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gts() {
            Some(g) => write!(f, "{g}GT/s"),
            None => write!(f, "unknown ({})", self.0),
        }
    }
}

impl Serialize for LinkSpeed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.gts() {
            Some(g) => s.serialize_f64(g),
            None => s.serialize_none(),
        }
    }
}

/// Device Capabilities (PCIe r6.0 §7.5.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DevCap {
    /// Max_Payload_Size Supported, bits 2:0, in bytes (128 << n).
    pub max_payload_supported: u16,
    /// Extended Tag Field Supported, bit 5.
    pub extended_tag: bool,
    /// Function Level Reset Capability, bit 28.
    pub flr: bool,
}

/// Device Control (PCIe r6.0 §7.5.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DevCtl {
    /// Enable Relaxed Ordering, bit 4.
    pub relaxed_ordering: bool,
    /// Enable No Snoop, bit 11.
    pub no_snoop: bool,
    /// Extended Tag Field Enable, bit 8.
    pub extended_tag: bool,
    /// Max_Payload_Size, bits 7:5, in bytes.
    pub max_payload: u16,
    /// Max_Read_Request_Size, bits 14:12, in bytes.
    pub max_read_request: u16,
    /// The whole register as read.
    pub raw: u16,
}

/// Link Capabilities (PCIe r6.0 §7.5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LinkCap {
    /// Max Link Speed, bits 3:0.
    pub max_speed: LinkSpeed,
    /// Maximum Link Width, bits 9:4.
    pub max_width: u8,
    /// Port Number, bits 31:24.
    pub port_number: u8,
    /// ASPM Support, bits 11:10 (bit 0 L0s, bit 1 L1).
    pub aspm_support: u8,
    /// Data Link Layer Link Active Reporting Capable, bit 20.
    pub dll_active_reporting: bool,
}

/// Link Status (PCIe r6.0 §7.5.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct LinkStatus {
    /// Current Link Speed, bits 3:0.
    pub speed: LinkSpeed,
    /// Negotiated Link Width, bits 9:4.
    pub width: u8,
    /// Link Training, bit 11.
    pub training: bool,
    /// Data Link Layer Link Active, bit 13.
    pub dll_active: bool,
}

/// The link registers of a PCI Express capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Link {
    /// Link Capabilities (+0x0c).
    pub cap: LinkCap,
    /// Link Status (+0x12).
    pub status: LinkStatus,
    /// Link Control (§7.5.3.7), undecoded.
    pub ctl_raw: u16,
}

/// Device Capabilities 2 (PCIe r6.0 §7.5.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DevCap2 {
    /// 10-Bit Tag Completer Supported, bit 16.
    pub ten_bit_tag_completer: bool,
    /// 10-Bit Tag Requester Supported, bit 17.
    pub ten_bit_tag_requester: bool,
    /// AtomicOp Routing Supported, bit 6.
    pub atomic_op_routing: bool,
    /// 32-bit AtomicOp Completer Supported, bit 7.
    pub atomic32_completer: bool,
    /// 64-bit AtomicOp Completer Supported, bit 8.
    pub atomic64_completer: bool,
    /// 128-bit CAS Completer Supported, bit 9.
    pub atomic128_completer: bool,
    /// LTR Mechanism Supported, bit 11.
    pub ltr: bool,
    /// The whole register as read.
    pub raw: u32,
}

/// Device Control 2 (PCIe r6.0 §7.5.3.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DevCtl2 {
    /// 10-Bit Tag Requester Enable, bit 12.
    pub ten_bit_tag_requester_enable: bool,
    /// AtomicOp Requester Enable, bit 6.
    pub atomic_op_requester_enable: bool,
    /// AtomicOp Egress Blocking, bit 7.
    pub atomic_op_egress_blocking: bool,
    /// LTR Mechanism Enable, bit 10.
    pub ltr_enable: bool,
    /// The whole register as read.
    pub raw: u16,
}

/// The decoded PCI Express capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Express {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// Capability Version, bits 3:0 of the capabilities register.
    pub version: u8,
    /// Device/Port Type, bits 7:4 of the capabilities register.
    pub port_type: PortType,
    /// Slot Implemented, bit 8 of the capabilities register.
    pub slot_implemented: bool,
    /// Device Capabilities (+0x04).
    pub dev_cap: DevCap,
    /// Device Control (+0x08).
    pub dev_ctl: DevCtl,
    /// `None` when the port type has no link or the bytes are missing.
    pub link: Option<Link>,
    /// Only for capability version >= 2 (the register was reserved before).
    pub dev_cap2: Option<DevCap2>,
    /// Device Control 2 (+0x28), under the same condition as `dev_cap2`.
    pub dev_ctl2: Option<DevCtl2>,
}

/// 128 << n bytes, the encoding of Max_Payload_Size and Max_Read_Request_Size
/// (3-bit fields, so at most 16384).
fn size_code(code: u32) -> u16 {
    128u16 << (code & 7)
}

fn decode_link(cap: &[u8], off: usize) -> Option<Link> {
    let lnkcap = read_u32(cap, off + LNKCAP)?;
    let ctl_raw = read_u16(cap, off + LNKCTL)?;
    let lnksta = u32::from(read_u16(cap, off + LNKSTA)?);
    Some(Link {
        cap: LinkCap {
            max_speed: LinkSpeed((lnkcap & 0xf) as u8),
            max_width: ((lnkcap >> 4) & 0x3f) as u8,
            port_number: (lnkcap >> 24) as u8,
            aspm_support: ((lnkcap >> 10) & 0x3) as u8,
            dll_active_reporting: bit(lnkcap, 20),
        },
        status: LinkStatus {
            speed: LinkSpeed((lnksta & 0xf) as u8),
            width: ((lnksta >> 4) & 0x3f) as u8,
            training: bit(lnksta, 11),
            dll_active: bit(lnksta, 13),
        },
        ctl_raw,
    })
}

fn decode_dev_cap2(raw: u32) -> DevCap2 {
    DevCap2 {
        ten_bit_tag_completer: bit(raw, 16),
        ten_bit_tag_requester: bit(raw, 17),
        atomic_op_routing: bit(raw, 6),
        atomic32_completer: bit(raw, 7),
        atomic64_completer: bit(raw, 8),
        atomic128_completer: bit(raw, 9),
        ltr: bit(raw, 11),
        raw,
    }
}

fn decode_dev_ctl2(raw: u16) -> DevCtl2 {
    let r = u32::from(raw);
    DevCtl2 {
        ten_bit_tag_requester_enable: bit(r, 12),
        atomic_op_requester_enable: bit(r, 6),
        atomic_op_egress_blocking: bit(r, 7),
        ltr_enable: bit(r, 10),
        raw,
    }
}

/// Decodes the PCI Express capability at `offset`. Needs at least the
/// capabilities register and Device Capabilities/Control; the link and the
/// version-2 registers are optional.
pub(crate) fn decode(config: &[u8], offset: u16) -> Option<Express> {
    let off = usize::from(offset);
    let flags = read_u16(config, off + FLAGS)?;
    let devcap = read_u32(config, off + DEVCAP)?;
    let devctl = read_u16(config, off + DEVCTL)?;
    let ctl = u32::from(devctl);
    let version = (flags & 0xf) as u8;
    let port_type = PortType::from_code(((flags >> 4) & 0xf) as u8);
    let v2 = version >= 2;
    Some(Express {
        offset,
        version,
        port_type,
        slot_implemented: bit(u32::from(flags), 8),
        dev_cap: DevCap {
            max_payload_supported: size_code(devcap),
            extended_tag: bit(devcap, 5),
            flr: bit(devcap, 28),
        },
        dev_ctl: DevCtl {
            relaxed_ordering: bit(ctl, 4),
            no_snoop: bit(ctl, 11),
            extended_tag: bit(ctl, 8),
            max_payload: size_code(ctl >> 5),
            max_read_request: size_code(ctl >> 12),
            raw: devctl,
        },
        link: if port_type.has_link() {
            decode_link(config, off)
        } else {
            None
        },
        dev_cap2: v2
            .then(|| read_u32(config, off + DEVCAP2).map(decode_dev_cap2))
            .flatten(),
        dev_ctl2: v2
            .then(|| read_u16(config, off + DEVCTL2).map(decode_dev_ctl2))
            .flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Config, ExpressBody};

    fn express_at(off: usize, body: &ExpressBody) -> Vec<u8> {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x10, off, &body.bytes());
        c.truncated(256)
    }

    #[test]
    fn decodes_an_endpoint() {
        let mut b = ExpressBody::v2(0x0);
        b.devcap = 0x1000_0000 | 0x20 | 0x2; // FLR, ext tag, MPS 512
        b.devctl = 0x2000 | 0x0800 | 0x0100 | 0x0020 | 0x0010; // MRRS 512, NS, ET, MPS 256, RO
        b.lnkcap = 0x0010_0000 | 0x0c00 | (4 << 4) | 4 | (7 << 24);
        b.lnkctl = 0x0042;
        b.lnksta = 0x2000 | (4 << 4) | 3;
        let e = decode(&express_at(0x70, &b), 0x70).unwrap();
        assert_eq!(e.offset, 0x70);
        assert_eq!(e.version, 2);
        assert_eq!(e.port_type, PortType::Endpoint);
        assert!(!e.slot_implemented);
        assert_eq!(
            e.dev_cap,
            DevCap {
                max_payload_supported: 512,
                extended_tag: true,
                flr: true
            }
        );
        assert!(e.dev_ctl.relaxed_ordering && e.dev_ctl.no_snoop && e.dev_ctl.extended_tag);
        assert_eq!(e.dev_ctl.max_payload, 256);
        assert_eq!(e.dev_ctl.max_read_request, 512);
        assert_eq!(e.dev_ctl.raw, b.devctl);
        let link = e.link.unwrap();
        assert_eq!(link.cap.max_speed, LinkSpeed(4));
        assert_eq!(link.cap.max_width, 4);
        assert_eq!(link.cap.port_number, 7);
        assert_eq!(link.cap.aspm_support, 3);
        assert!(link.cap.dll_active_reporting);
        assert_eq!(link.status.speed, LinkSpeed(3));
        assert_eq!(link.status.width, 4);
        assert!(link.status.dll_active);
        assert!(!link.status.training);
        assert_eq!(link.ctl_raw, 0x0042);
    }

    #[test]
    fn decodes_dev_cap2_and_dev_ctl2_bits() {
        let mut b = ExpressBody::v2(0x4);
        b.devcap2 = (1 << 16) | (1 << 17) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 11);
        b.devctl2 = (1 << 12) | (1 << 6) | (1 << 7) | (1 << 10);
        let e = decode(&express_at(0x40, &b), 0x40).unwrap();
        let c2 = e.dev_cap2.unwrap();
        assert!(c2.ten_bit_tag_completer && c2.ten_bit_tag_requester);
        assert!(c2.atomic_op_routing && c2.atomic32_completer);
        assert!(c2.atomic64_completer && c2.atomic128_completer && c2.ltr);
        assert_eq!(c2.raw, b.devcap2);
        let t2 = e.dev_ctl2.unwrap();
        assert!(t2.ten_bit_tag_requester_enable && t2.atomic_op_requester_enable);
        assert!(t2.atomic_op_egress_blocking && t2.ltr_enable);

        // Each bit alone lands in its own field.
        b.devcap2 = 1 << 16;
        b.devctl2 = 1 << 10;
        let e = decode(&express_at(0x40, &b), 0x40).unwrap();
        let c2 = e.dev_cap2.unwrap();
        assert!(c2.ten_bit_tag_completer && !c2.ten_bit_tag_requester && !c2.ltr);
        let t2 = e.dev_ctl2.unwrap();
        assert!(t2.ltr_enable && !t2.ten_bit_tag_requester_enable);
    }

    #[test]
    fn version_1_has_no_dev_cap2() {
        let mut b = ExpressBody::v2(0x6);
        b.flags = 0x0001 | (0x6 << 4) | 0x0100;
        b.devcap2 = 0xffff_ffff;
        let e = decode(&express_at(0x40, &b), 0x40).unwrap();
        assert_eq!(e.version, 1);
        assert_eq!(e.port_type, PortType::DownstreamPort);
        assert!(e.slot_implemented);
        assert_eq!(e.dev_cap2, None);
        assert_eq!(e.dev_ctl2, None);
    }

    #[test]
    fn rc_integrated_endpoint_has_no_link() {
        let mut b = ExpressBody::v2(0x9);
        b.lnkcap = 0x41;
        let e = decode(&express_at(0x40, &b), 0x40).unwrap();
        assert_eq!(e.port_type, PortType::RcIntegratedEndpoint);
        assert_eq!(e.link, None);
    }

    #[test]
    fn truncated_capability() {
        let b = ExpressBody::v2(0x0);
        let bytes = express_at(0x40, &b);
        assert_eq!(decode(&bytes[..0x49], 0x40), None);
        let e = decode(&bytes[..0x4a], 0x40).unwrap();
        assert_eq!(e.link, None);
        assert_eq!(e.dev_cap2, None);
        let e = decode(&bytes[..0x54], 0x40).unwrap();
        assert!(e.link.is_some());
        assert_eq!(e.dev_cap2, None);
        // An Express capability at the very end of the 256-byte space.
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x10, 0xfc, &[0x02, 0x00]);
        assert_eq!(decode(&c.truncated(256), 0xfc), None);
    }

    #[test]
    fn port_types() {
        for code in 0..16u8 {
            assert_eq!(PortType::from_code(code).code(), code);
        }
        assert_eq!(PortType::from_code(4), PortType::RootPort);
        assert_eq!(PortType::from_code(3), PortType::Unknown(3));
        assert!(PortType::RootPort.is_downstream_facing());
        assert!(PortType::DownstreamPort.is_downstream_facing());
        assert!(PortType::PciToPcieBridge.is_downstream_facing());
        assert!(!PortType::UpstreamPort.is_downstream_facing());
        assert!(!PortType::PcieToPciBridge.is_downstream_facing());
        assert!(!PortType::Endpoint.is_downstream_facing());
        assert!(!PortType::RcEventCollector.has_link());
        assert!(PortType::UpstreamPort.has_link());
        let names: Vec<String> = [
            PortType::Endpoint,
            PortType::LegacyEndpoint,
            PortType::RootPort,
            PortType::UpstreamPort,
            PortType::DownstreamPort,
            PortType::PcieToPciBridge,
            PortType::PciToPcieBridge,
            PortType::RcIntegratedEndpoint,
            PortType::RcEventCollector,
            PortType::Unknown(0xb),
        ]
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                "\"endpoint\"",
                "\"legacy_endpoint\"",
                "\"root_port\"",
                "\"upstream_port\"",
                "\"downstream_port\"",
                "\"pcie_to_pci_bridge\"",
                "\"pci_to_pcie_bridge\"",
                "\"rc_integrated_endpoint\"",
                "\"rc_event_collector\"",
                "\"unknown\"",
            ]
        );
        assert_eq!(PortType::RootPort.to_string(), "root_port");
    }

    #[test]
    fn link_speeds_like_lspci() {
        let shown: Vec<String> = (0..8).map(|c| LinkSpeed(c).to_string()).collect();
        assert_eq!(
            shown,
            [
                "unknown (0)",
                "2.5GT/s",
                "5GT/s",
                "8GT/s",
                "16GT/s",
                "32GT/s",
                "64GT/s",
                "unknown (7)"
            ]
        );
        assert_eq!(LinkSpeed(4).generation(), Some(4));
        assert_eq!(LinkSpeed(0).generation(), None);
        assert_eq!(LinkSpeed(7).gts(), None);
        assert_eq!(serde_json::to_string(&LinkSpeed(1)).unwrap(), "2.5");
        assert_eq!(serde_json::to_string(&LinkSpeed(3)).unwrap(), "8.0");
        assert_eq!(serde_json::to_string(&LinkSpeed(9)).unwrap(), "null");
    }

    #[test]
    fn payload_sizes_cover_reserved_codes() {
        assert_eq!(size_code(0), 128);
        assert_eq!(size_code(5), 4096);
        assert_eq!(size_code(7), 16384);
    }
}
