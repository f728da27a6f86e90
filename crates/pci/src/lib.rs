//! PCI specification knowledge: config-space decoding. Pure: no I/O, no Linux.
//!
//! [`decode`] takes the bytes of one function's configuration space (any
//! length: the 64 bytes a non-root user reads from sysfs, 256, or 4096) and
//! returns a [`Decoded`] value. Like pciutils `ls-caps.c` / `ls-ecaps.c`, each
//! capability has one small decoder, dispatched from a table by ID. Nothing
//! here panics on input: short buffers give `None` fields, and malformed
//! capability lists are walked defensively and reported in
//! [`Decoded::problems`].
//!
//! A crate of its own (p2pdoctor re-exports it as `p2pdoctor::pci`): it
//! knows the PCI specifications and nothing about Linux, sysfs or P2PDMA,
//! so it can be used and tested alone. Its only dependencies are `serde`
//! (every decoded value serialises into p2pdoctor's JSON) and `thiserror`.

#![warn(missing_docs)]

mod acs;
mod bdf;
mod ecaps;
mod express;
mod header;
mod ids;
mod read;
mod rebar;
mod walk;

#[cfg(test)]
mod testutil;

pub use acs::{Acs, AcsFlags};
pub use bdf::{Bdf, BdfParseError};
pub use ecaps::{Aer, Ari, Ats, Dpc, Pasid, Pri, Sriov};
pub use express::{
    DevCap, DevCap2, DevCtl, DevCtl2, Express, Link, LinkCap, LinkSpeed, LinkStatus, PortType,
};
pub use header::{BridgeBuses, HeaderType};
pub use ids::*;
pub use rebar::ResizableBar;
pub use walk::{CapabilityEntry, ExtCapabilityEntry, WalkProblem};

use serde::Serialize;

use header::COMMAND_BUS_MASTER;
use read::read_u16;

/// Size of the PCI-compatible config space; standard capabilities live below.
const STD_SPACE: usize = 0x100;
/// Size of the PCI Express extended config space.
const EXT_SPACE: usize = 0x1000;

/// Everything decoded from one function's config space.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Decoded {
    /// Number of bytes that were available.
    pub length: usize,
    /// Vendor ID (+0x00).
    pub vendor_id: Option<u16>,
    /// Device ID (+0x02).
    pub device_id: Option<u16>,
    /// Command register (+0x04).
    pub command: Option<u16>,
    /// Status register (+0x06).
    pub status: Option<u16>,
    /// Revision ID (+0x08).
    pub revision: Option<u8>,
    /// Base class, sub-class and programming interface, 24 bits.
    pub class_code: Option<u32>,
    /// Header Type bits 6:0 (+0x0e): the layout of the rest of the header.
    pub header_type: Option<HeaderType>,
    /// Header Type bit 7.
    pub multifunction: bool,
    /// (subsystem vendor, subsystem device): from 0x2c in a type 0 header,
    /// 0x40 in a CardBus header, the SSVID capability (0x0d) in a type 1.
    pub subsystem: Option<(u16, u16)>,
    /// Type 1 headers only.
    pub buses: Option<BridgeBuses>,
    /// The standard capability list, in walk order.
    pub capabilities: Vec<CapabilityEntry>,
    /// The extended capability list, in walk order.
    pub extended_capabilities: Vec<ExtCapabilityEntry>,
    /// What was wrong with either capability list.
    pub problems: Vec<WalkProblem>,
    /// The standard capability list was fully readable: the walk never needed
    /// a byte beyond the buffer (true when there is no list at all; false for
    /// the 64-byte non-root view of a device that has one).
    pub capabilities_readable: bool,
    /// The buffer holds the extended space (at least 4096 bytes).
    pub extended_readable: bool,
    /// The PCI Express capability.
    pub express: Option<Express>,
    /// Access Control Services.
    pub acs: Option<Acs>,
    /// Advanced Error Reporting.
    pub aer: Option<Aer>,
    /// Address Translation Services.
    pub ats: Option<Ats>,
    /// Page Request Interface.
    pub pri: Option<Pri>,
    /// Process Address Space ID.
    pub pasid: Option<Pasid>,
    /// Device Serial Number (PCIe r6.0 §7.9.3).
    pub dsn: Option<u64>,
    /// Alternative Routing-ID Interpretation.
    pub ari: Option<Ari>,
    /// Single Root I/O Virtualization.
    pub sriov: Option<Sriov>,
    /// Resizable BAR: one entry per BAR the capability lists.
    pub resizable_bar: Vec<ResizableBar>,
    /// Downstream Port Containment.
    pub dpc: Option<Dpc>,
}

impl Decoded {
    /// Bus Master Enable, Command register bit 2 (PCIe r6.0 §7.5.1.1.3).
    pub fn bus_master(&self) -> Option<bool> {
        self.command.map(|c| c & COMMAND_BUS_MASTER != 0)
    }

    /// A bridge header (type 1, or CardBus type 2), as the kernel's
    /// `pci_is_bridge()`.
    pub fn is_bridge(&self) -> bool {
        matches!(
            self.header_type,
            Some(HeaderType::Bridge | HeaderType::CardBus)
        )
    }

    /// The first standard capability with this ID.
    pub fn find_capability(&self, id: u8) -> Option<CapabilityEntry> {
        self.capabilities.iter().copied().find(|c| c.id == id)
    }

    /// The first extended capability with this ID.
    pub fn find_extended_capability(&self, id: u16) -> Option<ExtCapabilityEntry> {
        self.extended_capabilities
            .iter()
            .copied()
            .find(|c| c.id == id)
    }
}

/// A capability decoder: given the space its list lives in (the first 256
/// bytes for standard capabilities, so one near 0xff cannot read extended
/// space as its own; at most 4096 for extended ones) and its offset.
type CapDecoder = fn(&[u8], u16, &mut Decoded);

const CAP_DECODERS: &[(u8, CapDecoder)] = &[
    (CAP_ID_EXPRESS, |c, o, d| d.express = express::decode(c, o)),
    (CAP_ID_SSVID, cap_ssvid),
];

const EXT_CAP_DECODERS: &[(u16, CapDecoder)] = &[
    (ECAP_ID_AER, |c, o, d| d.aer = ecaps::decode_aer(c, o)),
    (ECAP_ID_DSN, |c, o, d| d.dsn = ecaps::decode_dsn(c, o)),
    (ECAP_ID_ACS, |c, o, d| d.acs = acs::decode(c, o)),
    (ECAP_ID_ARI, |c, o, d| d.ari = ecaps::decode_ari(c, o)),
    (ECAP_ID_ATS, |c, o, d| d.ats = ecaps::decode_ats(c, o)),
    (ECAP_ID_SRIOV, |c, o, d| d.sriov = ecaps::decode_sriov(c, o)),
    (ECAP_ID_PRI, |c, o, d| d.pri = ecaps::decode_pri(c, o)),
    (ECAP_ID_REBAR, |c, o, d| {
        d.resizable_bar = rebar::decode(c, o)
    }),
    (ECAP_ID_PASID, |c, o, d| d.pasid = ecaps::decode_pasid(c, o)),
    (ECAP_ID_DPC, |c, o, d| d.dpc = ecaps::decode_dpc(c, o)),
];

/// How far past its offset each extended capability's decoder reads (its
/// header included), for [`extended_reads`]: one entry per entry of
/// [`EXT_CAP_DECODERS`], in its order (a test holds the two tables to the
/// same IDs, and every decoder to reading nothing past its extent).
const EXT_CAP_EXTENTS: &[(u16, u16)] = &[
    (ECAP_ID_AER, 0x18),   // through Correctable Error Mask, +0x14
    (ECAP_ID_DSN, 0x0c),   // the serial number, +0x04..+0x0c
    (ECAP_ID_ACS, 0x08),   // Capability +0x04, Control +0x06
    (ECAP_ID_ARI, 0x08),   // Capability +0x04
    (ECAP_ID_ATS, 0x08),   // Capability +0x04, Control +0x06
    (ECAP_ID_SRIOV, 0x1c), // through VF Device ID, +0x1a
    (ECAP_ID_PRI, 0x0c),   // Control +0x04, Outstanding Capacity +0x08
    (ECAP_ID_REBAR, 0x34), // up to six 8-byte BAR entries from +0x04
    (ECAP_ID_PASID, 0x08), // Capability +0x04, Control +0x06
    (ECAP_ID_DPC, 0x0c),   // Control +0x06, Status +0x08
];

/// The parts of extended config space that [`decode`] reads, found by
/// reading only the capability headers: `read_header(offset)` gives the
/// dword at `offset`, or None where it cannot be read (the walk ends
/// there, as decode's ends at the end of a buffer). It is asked for the
/// headers in the order the list links them, as [`decode`] walks it.
///
/// Returns the byte ranges, past those headers, that hold the registers
/// the capability decoders read: in offset order, merged, within 4096.
/// Config space put together from the first 256 bytes, the headers
/// `read_header` was asked for and these ranges, zeros elsewhere, and
/// as long as the whole, decodes exactly as the whole does. On a live
/// machine, where every 4 bytes read from sysfs `config` is one config
/// access taken under the kernel's global `pci_lock`, that is a few dozen
/// accesses per function instead of 960 for the extended space.
pub fn extended_reads(
    mut read_header: impl FnMut(u16) -> Option<u32>,
) -> Vec<std::ops::Range<u16>> {
    let walk = walk::walk_extended_by(|pos| u16::try_from(pos).ok().and_then(&mut read_header));
    let mut ranges: Vec<std::ops::Range<u16>> = Vec::new();
    for (id, offset) in first_of_each_id(walk.entries.iter().map(|e| (e.id, e.offset))) {
        if let Some(&(_, extent)) = EXT_CAP_EXTENTS.iter().find(|(i, _)| *i == id) {
            let end = (usize::from(offset) + usize::from(extent)).min(EXT_SPACE);
            ranges.push(offset + 4..end as u16);
        }
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<u16>> = Vec::with_capacity(ranges.len());
    for r in ranges.into_iter().filter(|r| !r.is_empty()) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Subsystem ID and Subsystem Vendor ID capability (PCIe r6.0 §7.9.23): the
/// IDs at +0x04/+0x06. Only a type 1 header takes its subsystem from here.
fn cap_ssvid(config: &[u8], offset: u16, out: &mut Decoded) {
    if out.header_type != Some(HeaderType::Bridge) {
        return;
    }
    let off = usize::from(offset);
    if let (Some(vendor), Some(device)) = (read_u16(config, off + 4), read_u16(config, off + 6)) {
        out.subsystem = Some((vendor, device));
    }
}

/// The bus numbers of a type 1 (PCI-to-PCI bridge) header, from the
/// header alone: None for any other header type or a buffer too short.
/// Cheaper than [`decode`] where only the nesting is wanted.
pub fn bridge_buses(config: &[u8]) -> Option<BridgeBuses> {
    header::decode_header(config).buses
}

/// Decodes a config-space buffer of any length. Never panics.
pub fn decode(config: &[u8]) -> Decoded {
    let h = header::decode_header(config);
    let mut out = Decoded {
        length: config.len(),
        vendor_id: h.vendor_id,
        device_id: h.device_id,
        command: h.command,
        status: h.status,
        revision: h.revision,
        class_code: h.class_code,
        header_type: h.header_type,
        multifunction: h.multifunction,
        subsystem: h.subsystem,
        buses: h.buses,
        extended_readable: config.len() >= EXT_SPACE,
        ..Decoded::default()
    };

    // Standard list (PCIe r6.0 §7.5.1.1.11). The first capability of each ID
    // wins, as with the kernel's pci_find_capability().
    let std_space = config.get(..STD_SPACE).unwrap_or(config);
    let walk = walk::walk_standard(std_space, h.header_type, h.status);
    out.capabilities_readable = walk.readable;
    out.problems.extend(walk.problems);
    let found = walk.entries.iter().map(|e| (e.id, e.offset));
    dispatch(found, CAP_DECODERS, std_space, &mut out);
    out.capabilities = walk.entries;

    // Extended list (PCIe r6.0 §7.6). Walked whenever the bytes are there,
    // even without an Express capability, so a damaged standard list does not
    // hide ACS.
    let ext_space = config.get(..EXT_SPACE).unwrap_or(config);
    let walk = walk::walk_extended(ext_space);
    out.problems.extend(walk.problems);
    let found = walk.entries.iter().map(|e| (e.id, e.offset));
    dispatch(found, EXT_CAP_DECODERS, ext_space, &mut out);
    out.extended_capabilities = walk.entries;
    out
}

/// Runs the decoder for each capability found, the first instance of an ID
/// only (as the kernel's pci_find_capability() and
/// pci_find_ext_capability() return the first).
fn dispatch<I: Copy + PartialEq>(
    found: impl Iterator<Item = (I, u16)>,
    table: &[(I, CapDecoder)],
    space: &[u8],
    out: &mut Decoded,
) {
    for (id, offset) in first_of_each_id(found) {
        if let Some((_, f)) = table.iter().find(|(t, _)| *t == id) {
            f(space, offset, out);
        }
    }
}

/// The capabilities decoded: the first of each ID, in list order.
fn first_of_each_id<I: Copy + PartialEq>(
    found: impl Iterator<Item = (I, u16)>,
) -> impl Iterator<Item = (I, u16)> {
    let mut seen: Vec<I> = Vec::new();
    found.filter(move |&(id, _)| {
        let first = !seen.contains(&id);
        if first {
            seen.push(id);
        }
        first
    })
}

#[cfg(test)]
mod tests;
