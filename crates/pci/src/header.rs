//! The first 64 bytes: the type 0/1/2 configuration header (PCIe r6.0 §7.5.1).

use serde::Serialize;

use super::read::{read_u8, read_u16, read_u32};

// Common header registers (PCIe r6.0 §7.5.1.1).
pub(crate) const VENDOR_ID: usize = 0x00;
pub(crate) const DEVICE_ID: usize = 0x02;
pub(crate) const COMMAND: usize = 0x04;
pub(crate) const STATUS: usize = 0x06;
pub(crate) const REVISION_CLASS: usize = 0x08;
pub(crate) const HEADER_TYPE: usize = 0x0e;
/// Capabilities Pointer for type 0 and type 1 headers (§7.5.1.1.11).
pub(crate) const CAPABILITY_LIST: usize = 0x34;

/// Status register bit 4: the function implements a capability list
/// (§7.5.1.1.4).
pub(crate) const STATUS_CAP_LIST: u16 = 0x0010;
/// Command register bit 2: Bus Master Enable (§7.5.1.1.3).
pub(crate) const COMMAND_BUS_MASTER: u16 = 0x0004;

// Type 0 header (§7.5.1.2).
const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
const SUBSYSTEM_ID: usize = 0x2e;

// Type 1 header (§7.5.1.3).
const PRIMARY_BUS: usize = 0x18;
const SECONDARY_BUS: usize = 0x19;
const SUBORDINATE_BUS: usize = 0x1a;

// Type 2 (CardBus) header: pciutils lib/header.h, PCI_CB_*.
const CB_CAPABILITY_LIST: usize = 0x14;
const CB_SUBSYSTEM_VENDOR_ID: usize = 0x40;
const CB_SUBSYSTEM_ID: usize = 0x42;

/// Header layout, from bits 6:0 of the Header Type register (§7.5.1.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderType {
    /// Type 0: an endpoint (or any non-bridge function).
    Normal,
    /// Type 1: a PCI-to-PCI bridge (root ports and switch ports included).
    Bridge,
    /// Type 2: a CardBus bridge.
    #[serde(rename = "cardbus")]
    CardBus,
    /// A reserved layout code.
    Unknown(u8),
}

impl HeaderType {
    /// The layout for a Header Type register value; bit 7 (multi-function)
    /// is ignored.
    pub fn from_register(value: u8) -> Self {
        match value & 0x7f {
            0 => HeaderType::Normal,
            1 => HeaderType::Bridge,
            2 => HeaderType::CardBus,
            other => HeaderType::Unknown(other),
        }
    }

    /// The layout code (0, 1, 2, ...).
    pub fn code(&self) -> u8 {
        match self {
            HeaderType::Normal => 0,
            HeaderType::Bridge => 1,
            HeaderType::CardBus => 2,
            HeaderType::Unknown(c) => *c,
        }
    }

    /// Where this layout keeps its Capabilities Pointer; `None` for reserved
    /// layouts, which the kernel (`pci_bus_find_cap_start`) does not walk.
    pub(crate) fn capability_pointer(&self) -> Option<usize> {
        match self {
            HeaderType::Normal | HeaderType::Bridge => Some(CAPABILITY_LIST),
            HeaderType::CardBus => Some(CB_CAPABILITY_LIST),
            HeaderType::Unknown(_) => None,
        }
    }
}

/// Bus numbers of a type 1 header (§7.5.1.3.2 - §7.5.1.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BridgeBuses {
    /// Primary Bus Number (+0x18): the bus the bridge sits on.
    pub primary: u8,
    /// Secondary Bus Number (+0x19): the bus directly below it.
    pub secondary: u8,
    /// Subordinate Bus Number (+0x1a): the highest bus below it.
    pub subordinate: u8,
}

/// What the header alone says; every field is `None` when its bytes are
/// missing from the buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Header {
    pub vendor_id: Option<u16>,
    pub device_id: Option<u16>,
    pub command: Option<u16>,
    pub status: Option<u16>,
    pub revision: Option<u8>,
    pub class_code: Option<u32>,
    pub header_type: Option<HeaderType>,
    pub multifunction: bool,
    pub subsystem: Option<(u16, u16)>,
    pub buses: Option<BridgeBuses>,
}

pub(crate) fn decode_header(config: &[u8]) -> Header {
    let revision_class = read_u32(config, REVISION_CLASS);
    let header_type_reg = read_u8(config, HEADER_TYPE);
    let header_type = header_type_reg.map(HeaderType::from_register);
    let pair = |a: usize, b: usize| Some((read_u16(config, a)?, read_u16(config, b)?));
    // Type 1 headers carry no subsystem registers; theirs comes from the
    // SSVID capability, filled in by the capability walk.
    let subsystem = match header_type {
        Some(HeaderType::Normal) => pair(SUBSYSTEM_VENDOR_ID, SUBSYSTEM_ID),
        Some(HeaderType::CardBus) => pair(CB_SUBSYSTEM_VENDOR_ID, CB_SUBSYSTEM_ID),
        _ => None,
    };
    let bridge_buses = || {
        Some(BridgeBuses {
            primary: read_u8(config, PRIMARY_BUS)?,
            secondary: read_u8(config, SECONDARY_BUS)?,
            subordinate: read_u8(config, SUBORDINATE_BUS)?,
        })
    };
    let buses = match header_type {
        Some(HeaderType::Bridge) => bridge_buses(),
        _ => None,
    };
    Header {
        vendor_id: read_u16(config, VENDOR_ID),
        device_id: read_u16(config, DEVICE_ID),
        command: read_u16(config, COMMAND),
        status: read_u16(config, STATUS),
        revision: read_u8(config, REVISION_CLASS),
        class_code: revision_class.map(|v| v >> 8),
        header_type,
        multifunction: header_type_reg.is_some_and(|v| v & 0x80 != 0),
        subsystem,
        buses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Config;

    #[test]
    fn endpoint_header() {
        let mut c = Config::endpoint(0x144d, 0xa808, 0x010802);
        c.u8(0x08, 0x02)
            .u16(0x04, 0x0406)
            .u16(0x2c, 0x144d)
            .u16(0x2e, 0xa801);
        c.u8(0x0e, 0x80);
        let h = decode_header(&c.build());
        assert_eq!(h.vendor_id, Some(0x144d));
        assert_eq!(h.device_id, Some(0xa808));
        assert_eq!(h.command, Some(0x0406));
        assert_eq!(h.revision, Some(0x02));
        assert_eq!(h.class_code, Some(0x010802));
        assert_eq!(h.header_type, Some(HeaderType::Normal));
        assert!(h.multifunction);
        assert_eq!(h.subsystem, Some((0x144d, 0xa801)));
        assert_eq!(h.buses, None);
    }

    #[test]
    fn bridge_header_has_buses_not_subsystem_registers() {
        let mut c = Config::bridge(0x8086, 0x1234, (0x00, 0x01, 0x05));
        c.u16(0x2c, 0xdead); // prefetchable limit upper 32 on a bridge, not a subsystem
        let h = decode_header(&c.build());
        assert_eq!(h.header_type, Some(HeaderType::Bridge));
        assert_eq!(
            h.buses,
            Some(BridgeBuses {
                primary: 0,
                secondary: 1,
                subordinate: 5
            })
        );
        assert_eq!(h.subsystem, None);
    }

    #[test]
    fn cardbus_subsystem_lives_at_0x40() {
        let mut c = Config::endpoint(0x1180, 0x0476, 0x060700);
        c.u8(0x0e, 0x02).u16(0x40, 0x1028).u16(0x42, 0x0188);
        let h = decode_header(&c.build());
        assert_eq!(h.header_type, Some(HeaderType::CardBus));
        assert_eq!(h.subsystem, Some((0x1028, 0x0188)));
        assert_eq!(HeaderType::CardBus.capability_pointer(), Some(0x14));
    }

    #[test]
    fn short_buffers_give_what_they_can() {
        let c = Config::endpoint(0x8086, 0x1234, 0x020000);
        let h = decode_header(&c.truncated(3));
        assert_eq!(h.vendor_id, Some(0x8086));
        assert_eq!(h.device_id, None);
        assert_eq!(h.header_type, None);
        assert!(!h.multifunction);
        let h = decode_header(&c.truncated(0x0f));
        assert_eq!(h.header_type, Some(HeaderType::Normal));
        assert_eq!(h.subsystem, None);
        assert_eq!(decode_header(&[]), Header::default());
    }

    #[test]
    fn header_type_codes() {
        assert_eq!(HeaderType::from_register(0x81), HeaderType::Bridge);
        assert_eq!(HeaderType::from_register(0x7f), HeaderType::Unknown(0x7f));
        assert_eq!(HeaderType::Unknown(5).code(), 5);
        assert_eq!(HeaderType::Unknown(5).capability_pointer(), None);
        assert_eq!(
            serde_json::to_string(&HeaderType::CardBus).unwrap(),
            "\"cardbus\""
        );
        assert_eq!(
            serde_json::to_string(&HeaderType::Normal).unwrap(),
            "\"normal\""
        );
    }
}
