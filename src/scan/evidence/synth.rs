//! Config space bytes from lspci's decoded text, so the text takes the same
//! road as a sysfs `config` file: `crate::pci::decode` and everything
//! after it. Each capability goes back to the offset lspci printed
//! (`[60]`, `[100 v1]`) with the registers its lines decode; what the text
//! does not show is either cut off (the 64-byte header view, as without
//! root) or named in [`UnknownRegisters`], never left as a zero that would
//! read as a fact.

use super::lspci_verbose::{CapKind, Caps, Verbose};
use crate::scan::{Register, UnknownRegisters};

/// The header-only view: what a non-root sysfs read gives, and what a
/// text without capabilities is worth.
pub const HEADER: usize = 64;

/// Bus numbers and identity of a function, whoever told them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Header {
    pub ids: Option<(u16, u16)>,
    pub class: Option<u32>,
    pub revision: Option<u8>,
    pub bridge: bool,
    pub buses: Option<(u8, u8, u8)>,
    pub multifunction: bool,
}

fn put16(c: &mut [u8], at: usize, v: u16) {
    if let Some(s) = c.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put32(c: &mut [u8], at: usize, v: u32) {
    if let Some(s) = c.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// The first 64 bytes. The capability list is marked present with a
/// pointer past the buffer (Status bit 4, pointer 0x40), so the decoder
/// calls the capabilities unreadable, as for a non-root read.
pub fn header_only(h: &Header, bus_master: Option<bool>) -> Vec<u8> {
    let mut c = vec![0u8; HEADER];
    write_header(&mut c, h, bus_master);
    put16(&mut c, 0x06, 0x0010);
    c[0x34] = 0x40;
    c
}

fn write_header(c: &mut [u8], h: &Header, bus_master: Option<bool>) {
    let (v, d) = h.ids.unwrap_or((0xffff, 0xffff));
    put16(c, 0x00, v);
    put16(c, 0x02, d);
    if bus_master == Some(true) {
        put16(c, 0x04, 0x0006);
    }
    c[0x08] = h.revision.unwrap_or(0);
    let class = h.class.unwrap_or(0);
    c[0x09] = class as u8;
    c[0x0a] = (class >> 8) as u8;
    c[0x0b] = (class >> 16) as u8;
    let mut ht = if h.bridge { 1 } else { 0 };
    if class >> 8 == 0x0607 {
        ht = 2;
    }
    c[0x0e] = ht | if h.multifunction { 0x80 } else { 0 };
    if let Some((p, s, sub)) = h.buses
        && ht == 1
    {
        c[0x18] = p;
        c[0x19] = s;
        c[0x1a] = sub;
    }
}

/// The Subsystem IDs of a type 0 header (0x2c), from `Subsystem: ...
/// [vvvv:dddd]` (-nn); unknown without -nn. A bridge's come from its
/// Subsystem capability (see `from_text`).
fn subsystem(c: &mut [u8], v: &Verbose, unknown: &mut UnknownRegisters) {
    match v.subsystem {
        Some((sv, sd)) if c[0x0e] & 0x7f == 0 => {
            put16(c, 0x2c, sv);
            put16(c, 0x2e, sd);
        }
        Some(_) => {}
        None => unknown.insert(Register::Subsystem),
    }
}

/// `MaxPayload 256 bytes` → the 3-bit code (128 << code).
fn size_code(bytes: u16) -> u16 {
    (bytes.max(128) / 128).trailing_zeros() as u16 & 7
}

/// Config bytes from a function's `-v` text; `unknown` gets the registers
/// the text leaves out. `notes` gets capabilities that could not be placed.
pub fn from_text(
    v: &Verbose,
    h: &Header,
    non_root: bool,
    unknown: &mut UnknownRegisters,
    notes: &mut Vec<String>,
) -> Vec<u8> {
    let caps = match &v.caps {
        // Another function of the same listing shows `<access denied>`:
        // lspci ran without root and read 64 bytes of this one too.
        Caps::NotShown if non_root => {
            let mut c = header_only(h, v.bus_master);
            subsystem(&mut c, v, unknown);
            if v.cap_list == Some(false) {
                put16(&mut c, 0x06, 0);
                c[0x34] = 0;
            }
            return c;
        }
        Caps::AccessDenied => {
            let mut c = header_only(h, v.bus_master);
            subsystem(&mut c, v, unknown);
            return c;
        }
        Caps::NotShown if v.level == 0 || v.cap_list == Some(true) => {
            let mut c = header_only(h, v.bus_master);
            subsystem(&mut c, v, unknown);
            return c;
        }
        Caps::NotShown => {
            // `-v` as root, no capability lines, Status: Cap- (or `Flags:`
            // only): a function without capabilities, 256 bytes like sysfs.
            let mut c = vec![0u8; 256];
            write_header(&mut c, h, v.bus_master);
            subsystem(&mut c, v, unknown);
            return c;
        }
        Caps::Listed(caps) => caps,
    };
    let express = caps.iter().any(|c| c.kind == CapKind::Std(0x10));
    let mut c = vec![0u8; if express { 4096 } else { 256 }];
    write_header(&mut c, h, v.bus_master);
    subsystem(&mut c, v, unknown);
    put16(&mut c, 0x06, 0x0010);

    // Standard list, in the order lspci walked it.
    let std: Vec<_> = caps
        .iter()
        .filter(|k| matches!(k.kind, CapKind::Std(_)))
        .filter(|k| {
            let ok = (0x40..=0xfc).contains(&k.offset) && k.offset % 4 == 0;
            if !ok {
                notes.push(format!(
                    "capability at [{:x}] is outside the standard capability area; left out",
                    k.offset
                ));
            }
            ok
        })
        .collect();
    c[0x34] = std.first().map(|k| k.offset as u8).unwrap_or(0);
    for (i, k) in std.iter().enumerate() {
        let off = usize::from(k.offset);
        let CapKind::Std(id) = k.kind else { continue };
        c[off] = id;
        c[off + 1] = std.get(i + 1).map(|n| n.offset as u8).unwrap_or(0);
        if id == 0x10 {
            express_regs(&mut c, off, k, unknown);
        }
        if id == 0x0d
            && let Some((sv, sd)) = v.subsystem
        {
            put16(&mut c, off + 4, sv);
            put16(&mut c, off + 6, sd);
        }
    }

    // Extended list.
    let ext: Vec<_> = caps
        .iter()
        .filter(|k| matches!(k.kind, CapKind::Ext(_)))
        .filter(|k| {
            let ok = (0x100..=0xffc).contains(&k.offset) && k.offset % 4 == 0 && c.len() == 4096;
            if !ok {
                notes.push(format!(
                    "extended capability at [{:x}] cannot be placed; left out",
                    k.offset
                ));
            }
            ok
        })
        .collect();
    // The list must start at 0x100; lspci prints it from there, so a text
    // whose first extended capability is elsewhere lost its head.
    if let Some(first) = ext.first()
        && first.offset != 0x100
    {
        notes.push(format!(
            "the extended capabilities start at [{:x}], not [100]: the text lost the first; they are left out",
            first.offset
        ));
        unknown.insert(Register::AcsCtrl);
        c.truncate(256);
        return c;
    }
    for (i, k) in ext.iter().enumerate() {
        let off = usize::from(k.offset);
        let CapKind::Ext(id) = k.kind else { continue };
        let next = ext.get(i + 1).map(|n| u32::from(n.offset)).unwrap_or(0);
        let version = u32::from(k.version.max(1));
        put32(&mut c, off, u32::from(id) | version << 16 | next << 20);
        match id {
            0x01 => {
                put32(&mut c, off + 4, k.ue_status.unwrap_or(0));
                put32(&mut c, off + 0x10, k.ce_status.unwrap_or(0));
                if k.ue_status.is_none() || k.ce_status.is_none() {
                    unknown.insert(Register::AerStatus);
                }
            }
            0x03 => {
                let dsn = k.dsn.unwrap_or(0);
                put32(&mut c, off + 4, dsn as u32);
                put32(&mut c, off + 8, (dsn >> 32) as u32);
            }
            0x0d => {
                unknown.insert(Register::AcsEgressVector);
                put16(&mut c, off + 4, k.acs_cap.unwrap_or(0));
                put16(&mut c, off + 6, k.acs_ctl.unwrap_or(0));
                if k.acs_ctl.is_none() {
                    unknown.insert(Register::AcsCtrl);
                }
            }
            0x0f => {
                put16(
                    &mut c,
                    off + 6,
                    if k.ats_enabled == Some(true) {
                        0x8000
                    } else {
                        0
                    },
                );
                if k.ats_enabled.is_none() {
                    unknown.insert(Register::AtsCtrl);
                }
            }
            0x15 => rebar(&mut c, off, &k.rebar),
            0x10 => {
                if let Some(s) = k.sriov {
                    put16(&mut c, off + 0x0c, s.initial);
                    put16(&mut c, off + 0x0e, s.total);
                    put16(&mut c, off + 0x10, s.number);
                    put16(&mut c, off + 0x14, s.offset);
                    put16(&mut c, off + 0x16, s.stride);
                    put16(&mut c, off + 0x1a, s.vf_device);
                }
            }
            _ => {}
        }
    }
    c
}

/// The Resizable BAR capability (PCIe r6.0 §7.8.6) from ls-ecaps.c
/// `cap_rebar()`'s lines, `BAR 1: current size: 256MB, supported: 1MB ..`:
/// per BAR a Capability dword (bits 4..31: sizes 2^(n+20)) and a Control
/// dword (BAR index, the count in the first, current size, sizes from
/// 2^48 in bits 16..31).
fn rebar(c: &mut [u8], off: usize, bars: &[(u8, u64, Vec<u64>)]) {
    let code = |bytes: u64| {
        (bytes >= 1 << 20 && bytes.is_power_of_two()).then(|| bytes.trailing_zeros() - 20)
    };
    let count = bars.len().min(6) as u32;
    for (i, (index, current, supported)) in bars.iter().take(6).enumerate() {
        let mut cap = 0u32;
        let mut ctrl = u32::from(*index & 7) | code(*current).unwrap_or(0).min(0x3f) << 8;
        if i == 0 {
            ctrl |= count << 5;
        }
        for n in supported.iter().filter_map(|&b| code(b)) {
            match n {
                0..=27 => cap |= 1 << (n + 4),
                28..=43 => ctrl |= 1 << (n - 28 + 16),
                _ => {}
            }
        }
        put32(c, off + 4 + 8 * i, cap);
        put32(c, off + 8 + 8 * i, ctrl);
    }
}

fn express_regs(
    c: &mut [u8],
    off: usize,
    k: &super::lspci_verbose::Cap,
    unknown: &mut UnknownRegisters,
) {
    let e = &k.express;
    let Some(port_type) = e.port_type else {
        // `Express` without a type lspci knows: nothing to rebuild.
        unknown.insert(Register::DevCtl);
        unknown.insert(Register::Link);
        unknown.insert(Register::DevCtl2);
        return;
    };
    // Version 2 unless the text said v1: the v2 registers are then kept
    // unknown where the text has no DevCap2 line (`-v` shows none).
    let version: u16 = if k.version == 1 { 1 } else { 2 };
    let flags = version | u16::from(port_type.code()) << 4 | if e.slot { 0x100 } else { 0 };
    put16(c, off + 2, flags);
    put32(
        c,
        off + 4,
        u32::from(size_code(e.devcap_mps.unwrap_or(128))),
    );
    let devctl = u16::from(e.relaxed_ordering == Some(true)) << 4
        | size_code(e.mps.unwrap_or(128)) << 5
        | size_code(e.mrrs.unwrap_or(128)) << 12;
    put16(c, off + 8, devctl);
    if e.mps.is_none() || e.mrrs.is_none() || e.relaxed_ordering.is_none() {
        unknown.insert(Register::DevCtl);
    }
    if port_type.has_link() {
        if let Some((s, w)) = e.lnkcap {
            put32(c, off + 0x0c, u32::from(s) | u32::from(w) << 4);
        }
        if let Some((s, w)) = e.lnksta {
            put16(c, off + 0x12, u16::from(s) | u16::from(w) << 4);
        }
        if e.lnkcap.is_none() || e.lnksta.is_none() {
            unknown.insert(Register::Link);
        }
    }
    if version >= 2 {
        put32(c, off + 0x24, e.devcap2.unwrap_or(0));
        put16(c, off + 0x28, e.devctl2.unwrap_or(0));
        if e.devcap2.is_none() || e.devctl2.is_none() {
            unknown.insert(Register::DevCtl2);
        }
    }
}
