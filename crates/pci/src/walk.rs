//! Walking the standard and extended capability lists, defensively.
//!
//! Mirrors the kernel's `__pci_find_next_cap_ttl()` and
//! `pci_find_next_ext_capability()` (drivers/pci/pci.c) and pciutils'
//! `lib/caps.c`: a TTL bounds the walk, a visited set stops loops, and every
//! oddity is recorded as a [`WalkProblem`] instead of aborting.

use std::fmt;

use serde::Serialize;

use super::header::{HeaderType, STATUS_CAP_LIST};
use super::read::{read_u8, read_u32};

/// Standard capabilities live in 0x40..0x100 (PCIe r6.0 §7.5.1.1.11).
const STD_CAP_MIN: usize = 0x40;
/// `PCI_FIND_CAP_TTL`: at most 48 standard capabilities ((256 - 64) / 4).
pub(crate) const STD_CAP_TTL: usize = 48;
/// Extended capabilities start at 0x100 (PCIe r6.0 §7.6.1).
pub(crate) const EXT_CAP_START: usize = 0x100;
/// The kernel's TTL: each extended capability takes at least 8 bytes.
pub(crate) const EXT_CAP_TTL: usize = (4096 - 256) / 8;
/// Next Capability Offset is bits 31:20 of the extended header, dword
/// aligned (§7.6.3; the kernel's `PCI_EXT_CAP_NEXT`).
const EXT_NEXT_MASK: usize = 0xffc;

/// One entry of the standard capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CapabilityEntry {
    /// Capability ID (`CAP_ID_*`).
    pub id: u8,
    /// Where the capability starts in config space.
    pub offset: u16,
}

/// One entry of the extended capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ExtCapabilityEntry {
    /// Extended capability ID (`ECAP_ID_*`).
    pub id: u16,
    /// Capability Version, bits 19:16 of the header.
    pub version: u8,
    /// Where the capability starts in config space.
    pub offset: u16,
}

/// Something wrong with the device's capability lists. Problems describe the
/// config space itself: a buffer that merely ends early (the 64-byte view a
/// non-root user gets) is not a problem; see `capabilities_readable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WalkProblem {
    /// The list led back to a capability already visited.
    Loop {
        /// The offset of the offending entry (or pointer).
        offset: u16,
    },
    /// A pointer into the header (below 0x40) or, for the extended list,
    /// below 0x100.
    OutOfBounds {
        /// The offset of the offending entry (or pointer).
        offset: u16,
    },
    /// A capability header read as all ones: the device is gone or the read
    /// was refused.
    AllOnes {
        /// The offset of the offending entry (or pointer).
        offset: u16,
    },
    /// A pointer with its reserved low two bits set (followed, masked).
    Misaligned {
        /// The offset of the offending entry (or pointer).
        offset: u16,
    },
    /// More capabilities than fit in the space (the kernel's TTL ran out).
    TooMany,
}

impl fmt::Display for WalkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkProblem::Loop { offset } => {
                write!(f, "capability list loops back to offset {offset:#x}")
            }
            WalkProblem::OutOfBounds { offset } => {
                write!(
                    f,
                    "capability pointer {offset:#x} points outside the capability area"
                )
            }
            WalkProblem::AllOnes { offset } => write!(
                f,
                "capability at offset {offset:#x} reads as all ones (device gone or read refused)"
            ),
            WalkProblem::Misaligned { offset } => {
                write!(f, "capability pointer {offset:#x} is not 4-byte aligned")
            }
            WalkProblem::TooMany => {
                write!(
                    f,
                    "capability list is longer than the space allows (cut short)"
                )
            }
        }
    }
}

/// The outcome of the standard walk.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StandardWalk {
    pub entries: Vec<CapabilityEntry>,
    pub problems: Vec<WalkProblem>,
    /// False when the walk needed bytes beyond the buffer.
    pub readable: bool,
}

/// Walks the standard list (PCIe r6.0 §7.5.1.1.11, §7.5.3.1).
pub(crate) fn walk_standard(
    config: &[u8],
    header_type: Option<HeaderType>,
    status: Option<u16>,
) -> StandardWalk {
    let mut walk = StandardWalk::default();
    let (Some(status), Some(header_type)) = (status, header_type) else {
        return walk; // not even the header is there
    };
    walk.readable = true;
    if status & STATUS_CAP_LIST == 0 {
        return walk;
    }
    let Some(start) = header_type.capability_pointer() else {
        return walk;
    };
    let Some(first) = read_u8(config, start) else {
        walk.readable = false;
        return walk;
    };

    let mut seen = [false; 256];
    let mut ttl = STD_CAP_TTL;
    let mut ptr = usize::from(first);
    loop {
        if ptr == 0 {
            break;
        }
        // The kernel stops at pointers into the header before masking.
        if ptr < STD_CAP_MIN {
            walk.problems
                .push(WalkProblem::OutOfBounds { offset: ptr as u16 });
            break;
        }
        if ptr & 3 != 0 {
            walk.problems
                .push(WalkProblem::Misaligned { offset: ptr as u16 });
            ptr &= !3;
        }
        if seen.get(ptr).copied().unwrap_or(true) {
            walk.problems.push(WalkProblem::Loop { offset: ptr as u16 });
            break;
        }
        if ttl == 0 {
            walk.problems.push(WalkProblem::TooMany);
            break;
        }
        ttl -= 1;
        if let Some(s) = seen.get_mut(ptr) {
            *s = true;
        }
        let (Some(id), Some(next)) = (read_u8(config, ptr), read_u8(config, ptr + 1)) else {
            walk.readable = false;
            break;
        };
        if id == 0xff {
            walk.problems
                .push(WalkProblem::AllOnes { offset: ptr as u16 });
            break;
        }
        walk.entries.push(CapabilityEntry {
            id,
            offset: ptr as u16,
        });
        ptr = usize::from(next);
    }
    walk
}

/// The outcome of the extended walk.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExtendedWalk {
    pub entries: Vec<ExtCapabilityEntry>,
    pub problems: Vec<WalkProblem>,
}

/// Walks the extended list from 0x100 (PCIe r6.0 §7.6.3). A header of 0 means
/// no (more) capabilities; 0xffffffff means the space is not really there.
pub(crate) fn walk_extended(config: &[u8]) -> ExtendedWalk {
    walk_extended_by(|pos| read_u32(config, pos))
}

/// [`walk_extended`] with the headers read one at a time by
/// `read_header(offset)` (None: not there, the walk ends): the one walk
/// that both the decoder and a reader fetching only the headers follow.
pub(crate) fn walk_extended_by(mut read_header: impl FnMut(usize) -> Option<u32>) -> ExtendedWalk {
    let mut walk = ExtendedWalk::default();
    let mut seen = [false; 4096 / 4];
    let mut ttl = EXT_CAP_TTL;
    let mut pos = EXT_CAP_START;
    while let Some(header) = read_header(pos) {
        if header == 0 {
            break;
        }
        if header == 0xffff_ffff {
            walk.problems
                .push(WalkProblem::AllOnes { offset: pos as u16 });
            break;
        }
        if seen.get(pos / 4).copied().unwrap_or(true) {
            walk.problems.push(WalkProblem::Loop { offset: pos as u16 });
            break;
        }
        if ttl == 0 {
            walk.problems.push(WalkProblem::TooMany);
            break;
        }
        ttl -= 1;
        if let Some(s) = seen.get_mut(pos / 4) {
            *s = true;
        }
        walk.entries.push(ExtCapabilityEntry {
            id: (header & 0xffff) as u16,
            version: ((header >> 16) & 0xf) as u8,
            offset: pos as u16,
        });
        let raw_next = (header >> 20) as usize;
        if raw_next & 3 != 0 {
            walk.problems.push(WalkProblem::Misaligned {
                offset: raw_next as u16,
            });
        }
        let next = raw_next & EXT_NEXT_MASK;
        if next == 0 {
            break;
        }
        if next < EXT_CAP_START {
            walk.problems.push(WalkProblem::OutOfBounds {
                offset: raw_next as u16,
            });
            break;
        }
        pos = next;
    }
    walk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Config;

    fn std_walk(bytes: &[u8]) -> StandardWalk {
        walk_standard(bytes, Some(HeaderType::Normal), Some(0x0010))
    }

    fn ids(w: &StandardWalk) -> Vec<(u8, u16)> {
        w.entries.iter().map(|e| (e.id, e.offset)).collect()
    }

    #[test]
    fn follows_a_normal_list() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6])
            .cap(0x05, 0x50, &[0; 8])
            .cap(0x10, 0x70, &[0; 0x3a]);
        let w = walk_standard(&c.build(), Some(HeaderType::Normal), Some(0x0010));
        assert_eq!(ids(&w), vec![(0x01, 0x40), (0x05, 0x50), (0x10, 0x70)]);
        assert!(w.problems.is_empty());
        assert!(w.readable);
    }

    #[test]
    fn no_cap_list_bit_means_no_walk() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6]);
        let w = walk_standard(&c.build(), Some(HeaderType::Normal), Some(0x0000));
        assert!(w.entries.is_empty());
        assert!(w.readable);
    }

    #[test]
    fn self_pointing_capability_is_a_loop() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6]).u8(0x41, 0x40);
        let w = std_walk(&c.build());
        assert_eq!(ids(&w), vec![(0x01, 0x40)]);
        assert_eq!(w.problems, vec![WalkProblem::Loop { offset: 0x40 }]);
    }

    #[test]
    fn two_capabilities_pointing_at_each_other() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6])
            .cap(0x05, 0x80, &[0; 6])
            .u8(0x81, 0x40);
        let w = std_walk(&c.build());
        assert_eq!(ids(&w), vec![(0x01, 0x40), (0x05, 0x80)]);
        assert_eq!(w.problems, vec![WalkProblem::Loop { offset: 0x40 }]);
    }

    #[test]
    fn pointer_into_the_header_stops_the_walk() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6]).u8(0x41, 0x10);
        let w = std_walk(&c.build());
        assert_eq!(ids(&w), vec![(0x01, 0x40)]);
        assert_eq!(w.problems, vec![WalkProblem::OutOfBounds { offset: 0x10 }]);
    }

    #[test]
    fn misaligned_pointer_is_masked_and_reported() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6])
            .cap(0x05, 0x50, &[0; 6])
            .u8(0x41, 0x53);
        let w = std_walk(&c.build());
        assert_eq!(ids(&w), vec![(0x01, 0x40), (0x05, 0x50)]);
        assert_eq!(w.problems, vec![WalkProblem::Misaligned { offset: 0x53 }]);
    }

    #[test]
    fn id_ff_means_all_ones() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0xff, 0x40, &[0; 6]);
        let w = std_walk(&c.build());
        assert!(w.entries.is_empty());
        assert_eq!(w.problems, vec![WalkProblem::AllOnes { offset: 0x40 }]);
    }

    #[test]
    fn a_chain_through_every_slot_ends_without_too_many() {
        // 48 capabilities, 0x40..=0xfc, the last pointing back to the first:
        // the visited set catches it before the TTL does.
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        for off in (0x40..0x100).step_by(4) {
            c.cap(0x09, off, &[]);
        }
        c.u8(0xfd, 0x40);
        let w = std_walk(&c.build());
        assert_eq!(w.entries.len(), STD_CAP_TTL);
        assert_eq!(w.problems, vec![WalkProblem::Loop { offset: 0x40 }]);
    }

    #[test]
    fn truncated_buffer_is_unreadable_not_a_problem() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.cap(0x01, 0x40, &[0; 6]).cap(0x10, 0x80, &[0; 0x3a]);
        let w = std_walk(&c.truncated(64));
        assert!(w.entries.is_empty());
        assert!(!w.readable);
        assert!(w.problems.is_empty());
        let w = std_walk(&c.truncated(0x81));
        assert_eq!(ids(&w), vec![(0x01, 0x40)]);
        assert!(!w.readable);
        let w = std_walk(&c.truncated(0x34));
        assert!(!w.readable);
    }

    #[test]
    fn missing_header_is_unreadable() {
        let w = walk_standard(&[0; 4], None, None);
        assert!(!w.readable);
        assert!(w.entries.is_empty());
    }

    fn ext_ids(w: &ExtendedWalk) -> Vec<(u16, u8, u16)> {
        w.entries
            .iter()
            .map(|e| (e.id, e.version, e.offset))
            .collect()
    }

    #[test]
    fn follows_the_extended_list() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.ecap(0x0001, 2, 0x100, &[0; 0x40])
            .ecap(0x000d, 1, 0x148, &[0; 8]);
        let w = walk_extended(&c.build());
        assert_eq!(ext_ids(&w), vec![(0x0001, 2, 0x100), (0x000d, 1, 0x148)]);
        assert!(w.problems.is_empty());
    }

    #[test]
    fn empty_extended_space() {
        let c = Config::endpoint(0x8086, 0x1, 0x020000);
        let w = walk_extended(&c.build());
        assert!(w.entries.is_empty());
        assert!(w.problems.is_empty());
        assert_eq!(walk_extended(&c.truncated(256)), ExtendedWalk::default());
    }

    #[test]
    fn extended_loop_is_reported() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.ecap(0x0001, 2, 0x100, &[]).ecap(0x000d, 1, 0x200, &[]);
        c.u32(0x200, 0x000d | (1 << 16) | (0x100 << 20));
        let w = walk_extended(&c.build());
        assert_eq!(w.entries.len(), 2);
        assert_eq!(w.problems, vec![WalkProblem::Loop { offset: 0x100 }]);
    }

    #[test]
    fn extended_next_below_0x100_is_out_of_bounds() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.u32(0x100, 0x0001 | (0x040 << 20));
        let w = walk_extended(&c.build());
        assert_eq!(w.entries.len(), 1);
        assert_eq!(w.problems, vec![WalkProblem::OutOfBounds { offset: 0x40 }]);
    }

    #[test]
    fn extended_misaligned_next_is_masked() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.u32(0x100, 0x0001 | (0x202 << 20)).u32(0x200, 0x000d);
        let w = walk_extended(&c.build());
        assert_eq!(ext_ids(&w), vec![(0x0001, 0, 0x100), (0x000d, 0, 0x200)]);
        assert_eq!(w.problems, vec![WalkProblem::Misaligned { offset: 0x202 }]);
    }

    #[test]
    fn extended_all_ones() {
        let w = walk_extended(&[0xff; 4096]);
        assert!(w.entries.is_empty());
        assert_eq!(w.problems, vec![WalkProblem::AllOnes { offset: 0x100 }]);
    }

    #[test]
    fn extended_chain_longer_than_the_ttl() {
        // 4-byte capabilities at every dword from 0x100: 960 of them.
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        for pos in (0x100..0x1000).step_by(4) {
            let next = if pos + 4 < 0x1000 { pos + 4 } else { 0 };
            c.u32(pos, 0x000b | ((next as u32) << 20));
        }
        let w = walk_extended(&c.build());
        assert_eq!(w.entries.len(), EXT_CAP_TTL);
        assert_eq!(w.problems, vec![WalkProblem::TooMany]);
    }

    #[test]
    fn extended_pointer_past_a_short_buffer_just_stops() {
        let mut c = Config::endpoint(0x8086, 0x1, 0x020000);
        c.ecap(0x0001, 2, 0x100, &[]).ecap(0x000d, 1, 0x200, &[]);
        let w = walk_extended(&c.truncated(0x180));
        assert_eq!(w.entries.len(), 1);
        assert!(w.problems.is_empty());
    }

    #[test]
    fn problems_display_and_serialize() {
        assert_eq!(
            WalkProblem::Loop { offset: 0x40 }.to_string(),
            "capability list loops back to offset 0x40"
        );
        assert!(WalkProblem::TooMany.to_string().contains("longer"));
        assert_eq!(
            serde_json::to_string(&WalkProblem::AllOnes { offset: 256 }).unwrap(),
            r#"{"kind":"all_ones","offset":256}"#
        );
        assert_eq!(
            serde_json::to_string(&WalkProblem::TooMany).unwrap(),
            r#"{"kind":"too_many"}"#
        );
    }
}
