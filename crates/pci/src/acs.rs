//! Access Control Services extended capability (PCIe r6.0 §7.7.11), ID 0x000d.
//!
//! The Capability (+0x04) and Control (+0x06) registers share one bit layout
//! (§7.7.11.2, §7.7.11.3; pciutils `PCI_ACS_CAP_*` / `PCI_ACS_CTRL_*`).

use std::fmt;
use std::ops::BitOr;

use serde::Serialize;

use super::read::read_u16;

const ACS_CAP: usize = 0x04;
const ACS_CTRL: usize = 0x06;

/// A set of ACS bits, as found in the ACS Capability or Control register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct AcsFlags(pub u16);

/// (flag, short name, lspci name) in bit order.
const FLAG_NAMES: [(AcsFlags, &str, &str); 7] = [
    (AcsFlags::SV, "SV", "SrcValid"),
    (AcsFlags::TB, "TB", "TransBlk"),
    (AcsFlags::RR, "RR", "ReqRedir"),
    (AcsFlags::CR, "CR", "CmpltRedir"),
    (AcsFlags::UF, "UF", "UpstreamFwd"),
    (AcsFlags::EC, "EC", "EgressCtrl"),
    (AcsFlags::DT, "DT", "DirectTrans"),
];

impl AcsFlags {
    /// Source Validation, bit 0.
    pub const SV: AcsFlags = AcsFlags(1 << 0);
    /// Translation Blocking, bit 1.
    pub const TB: AcsFlags = AcsFlags(1 << 1);
    /// P2P Request Redirect, bit 2.
    pub const RR: AcsFlags = AcsFlags(1 << 2);
    /// P2P Completion Redirect, bit 3.
    pub const CR: AcsFlags = AcsFlags(1 << 3);
    /// Upstream Forwarding, bit 4.
    pub const UF: AcsFlags = AcsFlags(1 << 4);
    /// P2P Egress Control, bit 5.
    pub const EC: AcsFlags = AcsFlags(1 << 5);
    /// Direct Translated P2P, bit 6.
    pub const DT: AcsFlags = AcsFlags(1 << 6);
    /// The bits that make a bridge redirect peer-to-peer traffic upstream:
    /// what the kernel's `pci_bridge_has_acs_redir()` tests.
    pub const REDIRECTS: AcsFlags = AcsFlags(Self::RR.0 | Self::CR.0 | Self::EC.0);

    /// The raw register bits.
    pub fn bits(&self) -> u16 {
        self.0
    }

    /// True when every bit of `other` is set here.
    pub fn contains(&self, other: AcsFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set here.
    pub fn intersects(&self, other: AcsFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Source Validation set.
    pub fn sv(&self) -> bool {
        self.contains(Self::SV)
    }
    /// Translation Blocking set.
    pub fn tb(&self) -> bool {
        self.contains(Self::TB)
    }
    /// P2P Request Redirect set.
    pub fn rr(&self) -> bool {
        self.contains(Self::RR)
    }
    /// P2P Completion Redirect set.
    pub fn cr(&self) -> bool {
        self.contains(Self::CR)
    }
    /// Upstream Forwarding set.
    pub fn uf(&self) -> bool {
        self.contains(Self::UF)
    }
    /// P2P Egress Control set.
    pub fn ec(&self) -> bool {
        self.contains(Self::EC)
    }
    /// Direct Translated P2P set.
    pub fn dt(&self) -> bool {
        self.contains(Self::DT)
    }

    /// RR, CR or EC set: peer-to-peer requests or completions are sent up to
    /// the root complex instead of across the switch (drivers/pci/p2pdma.c,
    /// `pci_bridge_has_acs_redir()`). SV, TB, UF and DT do not count.
    pub fn redirects(&self) -> bool {
        self.intersects(Self::REDIRECTS)
    }

    /// Short names of the set bits, in bit order: "SV", "TB", "RR", ...
    pub fn names(&self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .filter(|(f, _, _)| self.contains(*f))
            .map(|(_, short, _)| *short)
            .collect()
    }
}

impl BitOr for AcsFlags {
    type Output = AcsFlags;
    fn bitor(self, rhs: AcsFlags) -> AcsFlags {
        AcsFlags(self.0 | rhs.0)
    }
}

/// Formats like lspci's ACSCap/ACSCtl lines:
/// `SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-`.
impl fmt::Display for AcsFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (flag, _, long)) in FLAG_NAMES.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let sign = if self.contains(*flag) { '+' } else { '-' };
            write!(f, "{sep}{long}{sign}")?;
        }
        Ok(())
    }
}

/// The decoded ACS capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Acs {
    /// Where the capability starts in config space.
    pub offset: u16,
    /// What the port can do (ACS Capability Register, §7.7.11.2).
    pub cap: AcsFlags,
    /// What is switched on (ACS Control Register, §7.7.11.3); `None` if the
    /// register lies beyond the buffer.
    pub ctrl: Option<AcsFlags>,
    /// Number of bits in the Egress Control Vector (Capability bits 15:8,
    /// where the encoding 0 means 256); 0 when the port is not EC capable.
    pub egress_vector_bits: u16,
}

/// Decodes the ACS capability at `offset`; `None` if even the Capability
/// register is missing.
pub(crate) fn decode(config: &[u8], offset: u16) -> Option<Acs> {
    let off = usize::from(offset);
    let raw_cap = read_u16(config, off + ACS_CAP)?;
    let cap = AcsFlags(raw_cap & 0x7f);
    let egress_vector_bits = match raw_cap >> 8 {
        _ if !cap.ec() => 0,
        0 => 256,
        n => n,
    };
    Some(Acs {
        offset,
        cap,
        ctrl: read_u16(config, off + ACS_CTRL).map(|c| AcsFlags(c & 0x7f)),
        egress_vector_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Config, words};

    #[test]
    fn flag_bits_and_names() {
        assert_eq!(AcsFlags::SV.bits(), 0x01);
        assert_eq!(AcsFlags::DT.bits(), 0x40);
        let f = AcsFlags(0x001d);
        assert!(f.sv() && f.rr() && f.cr() && f.uf());
        assert!(!f.tb() && !f.ec() && !f.dt());
        assert_eq!(f.names(), vec!["SV", "RR", "CR", "UF"]);
        assert!(f.contains(AcsFlags::RR | AcsFlags::CR));
        assert!(!f.contains(AcsFlags::RR | AcsFlags::EC));
        assert_eq!(
            f.to_string(),
            "SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-"
        );
        assert_eq!(AcsFlags(0).names(), Vec::<&str>::new());
    }

    #[test]
    fn redirects_means_rr_cr_or_ec() {
        assert!(AcsFlags::RR.redirects());
        assert!(AcsFlags::CR.redirects());
        assert!(AcsFlags::EC.redirects());
        for other in [AcsFlags::SV, AcsFlags::TB, AcsFlags::UF, AcsFlags::DT] {
            assert!(!other.redirects(), "{other}");
        }
        assert!(!(AcsFlags::SV | AcsFlags::TB | AcsFlags::UF | AcsFlags::DT).redirects());
    }

    #[test]
    fn decodes_cap_ctrl_and_egress_vector() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x060400);
        c.ecap(0x000d, 1, 0x100, &words(&[0x207f, 0x001d]));
        let acs = decode(&c.build(), 0x100).unwrap();
        assert_eq!(acs.offset, 0x100);
        assert_eq!(acs.cap, AcsFlags(0x7f));
        assert_eq!(acs.ctrl, Some(AcsFlags(0x1d)));
        assert_eq!(acs.egress_vector_bits, 0x20);
    }

    #[test]
    fn egress_vector_zero_means_256_only_with_ec() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x060400);
        c.ecap(0x000d, 1, 0x100, &words(&[0x0020, 0]));
        assert_eq!(decode(&c.build(), 0x100).unwrap().egress_vector_bits, 256);
        let mut c = Config::endpoint(0x8086, 0x1, 0x060400);
        c.ecap(0x000d, 1, 0x100, &words(&[0x101f, 0]));
        assert_eq!(decode(&c.build(), 0x100).unwrap().egress_vector_bits, 0);
    }

    #[test]
    fn control_beyond_the_buffer() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x060400);
        c.ecap(0x000d, 1, 0x100, &words(&[0x001f, 0x001d]));
        let acs = decode(&c.truncated(0x106), 0x100).unwrap();
        assert_eq!(acs.cap, AcsFlags(0x1f));
        assert_eq!(acs.ctrl, None);
        assert_eq!(decode(&c.truncated(0x105), 0x100), None);
        // At the very end of extended space only the header fits.
        assert_eq!(decode(&c.build(), 0xffc), None);
    }

    #[test]
    fn serializes_as_the_register_value() {
        assert_eq!(serde_json::to_string(&AcsFlags(0x1d)).unwrap(), "29");
    }
}
