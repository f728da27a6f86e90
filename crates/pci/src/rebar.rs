//! Resizable BAR extended capability (PCIe r6.0 §7.8.6), ID 0x0015.
//!
//! One Capability/Control register pair per resizable BAR, at +0x04 + 8*i.
//! Decoded like pciutils `cap_rebar()`: the BAR count (1..=6) comes from the
//! first Control register; sizes are powers of two from 1 MB.

use serde::Serialize;

use super::read::{bit, read_u32};

/// Sizes are encoded as n meaning 2^(n + 20) bytes (1 MB << n).
const SIZE_SHIFT: u32 = 20;
/// Highest size encoding with a meaning (2^63 bytes).
const MAX_SIZE_CODE: u32 = 43;

/// One resizable BAR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ResizableBar {
    /// BAR Index, Control bits 2:0.
    pub bar_index: u8,
    /// BAR Size, Control bits 13:8, in bytes; 0 for a reserved encoding.
    pub current_size: u64,
    /// Every supported size in bytes, ascending: Capability bits 31:4 (1 MB
    /// to 128 TB) and Control bits 31:16 (256 TB to 8 EB).
    pub supported_sizes: Vec<u64>,
}

fn size_bytes(code: u32) -> Option<u64> {
    (code <= MAX_SIZE_CODE).then(|| 1u64 << (code + SIZE_SHIFT))
}

/// Decodes every BAR entry of the Resizable BAR capability at `offset`. An
/// out-of-spec BAR count gives no entries (as lspci); entries past the end of
/// the buffer are left out.
pub(crate) fn decode(config: &[u8], offset: u16) -> Vec<ResizableBar> {
    let off = usize::from(offset);
    let Some(first_ctrl) = read_u32(config, off + 0x08) else {
        return Vec::new();
    };
    let count = ((first_ctrl >> 5) & 0x7) as usize;
    if !(1..=6).contains(&count) {
        return Vec::new();
    }
    let mut bars = Vec::with_capacity(count);
    for i in 0..count {
        let entry = off + 4 + 8 * i;
        let (Some(cap), Some(ctrl)) = (read_u32(config, entry), read_u32(config, entry + 4)) else {
            break;
        };
        let low = (4..32).filter(|&b| bit(cap, b)).map(|b| b - 4);
        let high = (16..32).filter(|&b| bit(ctrl, b)).map(|b| b - 16 + 28);
        bars.push(ResizableBar {
            bar_index: (ctrl & 0x7) as u8,
            current_size: size_bytes((ctrl >> 8) & 0x3f).unwrap_or(0),
            supported_sizes: low.chain(high).filter_map(size_bytes).collect(),
        });
    }
    bars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Config, dwords};

    const MB: u64 = 1 << 20;
    const GB: u64 = 1 << 30;

    #[test]
    fn gpu_with_two_resizable_bars() {
        // BAR 0: 256 MB now, 256 MB..32 GB supported; two BARs announced.
        // BAR 2: 32 MB now, 32 MB only.
        let mut c = Config::endpoint(0x10de, 0x2330, 0x030200);
        let cap0 = (0x3f << 8) << 4; // codes 8..=13 -> 256MB..8GB
        let cap0 = cap0 | (0b11 << 18); // codes 14, 15 -> 16GB, 32GB
        let ctrl0 = (8 << 8) | (2 << 5);
        let cap1 = 1 << (5 + 4);
        let ctrl1 = (5 << 8) | 2;
        c.ecap(0x0015, 1, 0x100, &dwords(&[cap0, ctrl0, cap1, ctrl1]));
        let bars = decode(&c.build(), 0x100);
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].bar_index, 0);
        assert_eq!(bars[0].current_size, 256 * MB);
        assert_eq!(bars[0].supported_sizes.first(), Some(&(256 * MB)));
        assert_eq!(bars[0].supported_sizes.last(), Some(&(32 * GB)));
        assert_eq!(bars[0].supported_sizes.len(), 8);
        assert_eq!(bars[1].bar_index, 2);
        assert_eq!(bars[1].current_size, 32 * MB);
        assert_eq!(bars[1].supported_sizes, vec![32 * MB]);
    }

    #[test]
    fn extended_sizes_in_the_control_register() {
        let mut c = Config::endpoint(0x10de, 0x1, 0x030200);
        let ctrl = (1 << 31) | (1 << 16) | (1 << 5) | (43 << 8);
        c.ecap(0x0015, 1, 0x100, &dwords(&[1 << 31, ctrl]));
        let bars = decode(&c.build(), 0x100);
        assert_eq!(bars[0].current_size, 1 << 63);
        assert_eq!(bars[0].supported_sizes, vec![1 << 47, 1 << 48, 1 << 63]);
    }

    #[test]
    fn reserved_current_size_is_zero() {
        let mut c = Config::endpoint(0x10de, 0x1, 0x030200);
        c.ecap(0x0015, 1, 0x100, &dwords(&[1 << 4, (63 << 8) | (1 << 5)]));
        assert_eq!(decode(&c.build(), 0x100)[0].current_size, 0);
    }

    #[test]
    fn bad_count_or_short_buffer() {
        let mut c = Config::endpoint(0x10de, 0x1, 0x030200);
        c.ecap(0x0015, 1, 0x100, &dwords(&[1 << 4, 7 << 5]));
        assert!(decode(&c.build(), 0x100).is_empty());
        let mut c = Config::endpoint(0x10de, 0x1, 0x030200);
        c.ecap(0x0015, 1, 0x100, &dwords(&[1 << 4, 0]));
        assert!(decode(&c.build(), 0x100).is_empty());
        let mut c = Config::endpoint(0x10de, 0x1, 0x030200);
        c.ecap(0x0015, 1, 0x100, &dwords(&[1 << 4, 3 << 5, 1 << 4, 1]));
        assert_eq!(decode(&c.truncated(0x114), 0x100).len(), 2);
        assert!(decode(&c.truncated(0x10b), 0x100).is_empty());
    }
}
