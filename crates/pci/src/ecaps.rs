//! Small extended capabilities: one decoder each, like pciutils `ls-ecaps.c`.
//!
//! Every decoder returns `None` when a register it needs lies beyond the
//! buffer. Offsets follow pciutils `lib/header.h` and the cited sections of
//! PCIe r6.0.

use serde::Serialize;

use super::read::{bit, read_u16, read_u32};

/// Advanced Error Reporting (PCIe r6.0 §7.8.4): the status, mask and
/// severity registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Aer {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// Uncorrectable Error Status, +0x04 (§7.8.4.2).
    pub uncorrectable_status: u32,
    /// Uncorrectable Error Mask, +0x08 (§7.8.4.3).
    pub uncorrectable_mask: u32,
    /// Uncorrectable Error Severity, +0x0c (§7.8.4.4).
    pub uncorrectable_severity: u32,
    /// Correctable Error Status, +0x10 (§7.8.4.5).
    pub correctable_status: u32,
    /// Correctable Error Mask, +0x14 (§7.8.4.6).
    pub correctable_mask: u32,
}

pub(crate) fn decode_aer(config: &[u8], offset: u16) -> Option<Aer> {
    let off = usize::from(offset);
    Some(Aer {
        offset,
        uncorrectable_status: read_u32(config, off + 0x04)?,
        uncorrectable_mask: read_u32(config, off + 0x08)?,
        uncorrectable_severity: read_u32(config, off + 0x0c)?,
        correctable_status: read_u32(config, off + 0x10)?,
        correctable_mask: read_u32(config, off + 0x14)?,
    })
}

/// Device Serial Number (PCIe r6.0 §7.9.3.2): the 64-bit value at +0x04,
/// lower dword first.
pub(crate) fn decode_dsn(config: &[u8], offset: u16) -> Option<u64> {
    let off = usize::from(offset);
    let low = read_u32(config, off + 0x04)?;
    let high = read_u32(config, off + 0x08)?;
    Some((u64::from(high) << 32) | u64::from(low))
}

/// Alternative Routing-ID Interpretation (PCIe r6.0 §7.8.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ari {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// Next Function Number, ARI Capability bits 15:8 (§7.8.8.2).
    pub next_function: u8,
}

pub(crate) fn decode_ari(config: &[u8], offset: u16) -> Option<Ari> {
    let cap = read_u16(config, usize::from(offset) + 0x04)?;
    Some(Ari {
        offset,
        next_function: (cap >> 8) as u8,
    })
}

/// Address Translation Services (PCIe r6.0 §10.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ats {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// Invalidate Queue Depth, ATS Capability bits 4:0, raw as lspci prints
    /// it (the encoding 0 means 32).
    pub invalidate_queue_depth: u8,
    /// Page Aligned Request, ATS Capability bit 5.
    pub page_aligned_request: bool,
    /// Enable, ATS Control bit 15.
    pub enabled: bool,
    /// Smallest Translation Unit, ATS Control bits 4:0 (2^(n+12) bytes).
    pub smallest_translation_unit: u8,
}

pub(crate) fn decode_ats(config: &[u8], offset: u16) -> Option<Ats> {
    let off = usize::from(offset);
    let cap = u32::from(read_u16(config, off + 0x04)?);
    let ctrl = u32::from(read_u16(config, off + 0x06)?);
    Some(Ats {
        offset,
        invalidate_queue_depth: (cap & 0x1f) as u8,
        page_aligned_request: bit(cap, 5),
        enabled: bit(ctrl, 15),
        smallest_translation_unit: (ctrl & 0x1f) as u8,
    })
}

/// Page Request Interface (PCIe r6.0 §10.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Pri {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// Enable, Page Request Control bit 0 (+0x04).
    pub enabled: bool,
    /// Outstanding Page Request Capacity (+0x08).
    pub outstanding_capacity: u32,
}

pub(crate) fn decode_pri(config: &[u8], offset: u16) -> Option<Pri> {
    let off = usize::from(offset);
    let ctrl = u32::from(read_u16(config, off + 0x04)?);
    Some(Pri {
        offset,
        enabled: bit(ctrl, 0),
        outstanding_capacity: read_u32(config, off + 0x08)?,
    })
}

/// Process Address Space ID (PCIe r6.0 §7.8.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Pasid {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// PASID Enable, PASID Control bit 0 (§7.8.9.3).
    pub enabled: bool,
    /// Max PASID Width, PASID Capability bits 12:8 (§7.8.9.2).
    pub max_width: u8,
    /// Execute Permission Supported, PASID Capability bit 1.
    pub execute: bool,
    /// Privileged Mode Supported, PASID Capability bit 2.
    pub privileged: bool,
}

pub(crate) fn decode_pasid(config: &[u8], offset: u16) -> Option<Pasid> {
    let off = usize::from(offset);
    let cap = u32::from(read_u16(config, off + 0x04)?);
    let ctrl = u32::from(read_u16(config, off + 0x06)?);
    Some(Pasid {
        offset,
        enabled: bit(ctrl, 0),
        max_width: ((cap >> 8) & 0x1f) as u8,
        execute: bit(cap, 1),
        privileged: bit(cap, 2),
    })
}

/// Single Root I/O Virtualization (PCIe r6.0 §9.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Sriov {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// TotalVFs (+0x0e).
    pub total_vfs: u16,
    /// NumVFs (+0x10).
    pub num_vfs: u16,
    /// VF Enable, SR-IOV Control bit 0 (+0x08).
    pub vf_enable: bool,
    /// First VF Offset (+0x14).
    pub vf_offset: u16,
    /// VF Stride (+0x16).
    pub vf_stride: u16,
    /// VF Device ID (+0x1a).
    pub vf_device_id: u16,
}

pub(crate) fn decode_sriov(config: &[u8], offset: u16) -> Option<Sriov> {
    let off = usize::from(offset);
    let ctrl = u32::from(read_u16(config, off + 0x08)?);
    Some(Sriov {
        offset,
        total_vfs: read_u16(config, off + 0x0e)?,
        num_vfs: read_u16(config, off + 0x10)?,
        vf_enable: bit(ctrl, 0),
        vf_offset: read_u16(config, off + 0x14)?,
        vf_stride: read_u16(config, off + 0x16)?,
        vf_device_id: read_u16(config, off + 0x1a)?,
    })
}

/// Downstream Port Containment (PCIe r6.0 §7.9.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Dpc {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// DPC Trigger Enable, DPC Control bits 1:0 (§7.9.14.3): 0 disabled,
    /// 1 on ERR_FATAL, 2 on ERR_NONFATAL or ERR_FATAL.
    pub trigger_enabled: u8,
    /// DPC Trigger Status, DPC Status bit 0 (§7.9.14.4): the port is
    /// containing (its link is down).
    pub trigger_status: bool,
}

pub(crate) fn decode_dpc(config: &[u8], offset: u16) -> Option<Dpc> {
    let off = usize::from(offset);
    let ctrl = read_u16(config, off + 0x06)?;
    let status = u32::from(read_u16(config, off + 0x08)?);
    Some(Dpc {
        offset,
        trigger_enabled: (ctrl & 0x3) as u8,
        trigger_status: bit(status, 0),
    })
}

/// Correctable Error Status bits (PCIe r6.0 §7.8.4.5), lspci's names.
const AER_CORRECTABLE: &[(u32, &str)] = &[
    (0, "RxErr"),
    (6, "BadTLP"),
    (7, "BadDLLP"),
    (8, "Rollover"),
    (12, "Timeout"),
    (13, "AdvNonFatalErr"),
    (14, "CorrIntErr"),
    (15, "HeaderOF"),
];

/// Uncorrectable Error Status bits (PCIe r6.0 §7.8.4.2), lspci's names.
const AER_UNCORRECTABLE: &[(u32, &str)] = &[
    (4, "DLP"),
    (5, "SDES"),
    (12, "TLP"),
    (13, "FCP"),
    (14, "CmpltTO"),
    (15, "CmpltAbrt"),
    (16, "UnxCmplt"),
    (17, "RxOF"),
    (18, "MalfTLP"),
    (19, "ECRC"),
    (20, "UnsupReq"),
    (21, "ACSViol"),
    (22, "UncorrIntErr"),
    (23, "BlockedTLP"),
    (24, "AtomicOpBlocked"),
    (25, "TLPBlockedErr"),
    (26, "PoisonTLPBlocked"),
];

fn aer_bit_names(value: u32, table: &[(u32, &str)]) -> String {
    let mut names: Vec<String> = table
        .iter()
        .filter(|(b, _)| value & (1 << b) != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let known: u32 = table.iter().map(|(b, _)| 1 << b).sum();
    if value & !known != 0 {
        names.push(format!("{:#010x}", value & !known));
    }
    names.join(" ")
}

impl Aer {
    /// The set bits of an Uncorrectable Error Status value, by lspci's names.
    pub fn uncorrectable_names(value: u32) -> String {
        aer_bit_names(value, AER_UNCORRECTABLE)
    }

    /// The set bits of a Correctable Error Status value, by lspci's names.
    pub fn correctable_names(value: u32) -> String {
        aer_bit_names(value, AER_CORRECTABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Config, dwords, words};

    fn with_ecap(id: u16, body: &[u8]) -> Vec<u8> {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.ecap(id, 1, 0x100, body);
        c.build()
    }

    #[test]
    fn aer() {
        let b = with_ecap(
            0x0001,
            &dwords(&[0x10, 0x0040_0000, 0x0006_2030, 0x2000, 0xe000]),
        );
        let a = decode_aer(&b, 0x100).unwrap();
        assert_eq!(a.uncorrectable_status, 0x10);
        assert_eq!(a.uncorrectable_mask, 0x0040_0000);
        assert_eq!(a.uncorrectable_severity, 0x0006_2030);
        assert_eq!(a.correctable_status, 0x2000);
        assert_eq!(a.correctable_mask, 0xe000);
        assert_eq!(decode_aer(&b[..0x117], 0x100), None);
        assert!(decode_aer(&b[..0x118], 0x100).is_some());
    }

    #[test]
    fn dsn() {
        let b = with_ecap(0x0003, &dwords(&[0x5566_7788, 0x1122_3344]));
        assert_eq!(decode_dsn(&b, 0x100), Some(0x1122_3344_5566_7788));
        assert_eq!(decode_dsn(&b[..0x10b], 0x100), None);
    }

    #[test]
    fn ari() {
        let b = with_ecap(0x000e, &words(&[0x0402, 0]));
        assert_eq!(
            decode_ari(&b, 0x100),
            Some(Ari {
                offset: 0x100,
                next_function: 4
            })
        );
    }

    #[test]
    fn ats() {
        let b = with_ecap(0x000f, &words(&[0x0020, 0x8003]));
        let a = decode_ats(&b, 0x100).unwrap();
        assert_eq!(a.invalidate_queue_depth, 0);
        assert!(a.page_aligned_request);
        assert!(a.enabled);
        assert_eq!(a.smallest_translation_unit, 3);
        let b = with_ecap(0x000f, &words(&[0x0011, 0x0000]));
        let a = decode_ats(&b, 0x100).unwrap();
        assert_eq!(a.invalidate_queue_depth, 0x11);
        assert!(!a.page_aligned_request && !a.enabled);
    }

    #[test]
    fn pri() {
        let mut body = words(&[0x0001, 0x0100]);
        body.extend(dwords(&[0x200, 0x80]));
        let p = decode_pri(&with_ecap(0x0013, &body), 0x100).unwrap();
        assert!(p.enabled);
        assert_eq!(p.outstanding_capacity, 0x200);
    }

    #[test]
    fn pasid() {
        let p = decode_pasid(&with_ecap(0x001b, &words(&[0x1406, 0x0001])), 0x100).unwrap();
        assert_eq!(
            p,
            Pasid {
                offset: 0x100,
                enabled: true,
                max_width: 0x14,
                execute: true,
                privileged: true
            }
        );
        let p = decode_pasid(&with_ecap(0x001b, &words(&[0x1000, 0])), 0x100).unwrap();
        assert!(!p.enabled && !p.execute && !p.privileged);
        assert_eq!(p.max_width, 0x10);
    }

    #[test]
    fn sriov() {
        // +04 cap, +08 ctrl, +0a status, +0c initial, +0e total, +10 num,
        // +12 FDL, +14 offset, +16 stride, +18 rsvd, +1a VF device ID.
        let mut body = dwords(&[0x0000_0000]);
        body.extend(words(&[0x0019, 0, 64, 64, 8, 0, 0x80, 2, 0, 0x1889]));
        let s = decode_sriov(&with_ecap(0x0010, &body), 0x100).unwrap();
        assert_eq!(
            s,
            Sriov {
                offset: 0x100,
                total_vfs: 64,
                num_vfs: 8,
                vf_enable: true,
                vf_offset: 0x80,
                vf_stride: 2,
                vf_device_id: 0x1889,
            }
        );
        let b = with_ecap(0x0010, &body);
        assert_eq!(decode_sriov(&b[..0x11b], 0x100), None);
    }

    #[test]
    fn dpc() {
        let d = decode_dpc(&with_ecap(0x001d, &words(&[0x00e8, 0x0002, 0x0001])), 0x100).unwrap();
        assert_eq!(
            d,
            Dpc {
                offset: 0x100,
                trigger_enabled: 2,
                trigger_status: true
            }
        );
    }
}
