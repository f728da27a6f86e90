//! Checked little-endian reads from a config-space buffer.
//!
//! Config space is little-endian (PCIe r6.0 §7.2). Every read here returns
//! `None` instead of panicking when the buffer is too short, so decoders can
//! use `?` and degrade gracefully on the 64-byte view a non-root user gets.

/// One byte at `off`, or `None` past the end.
pub(crate) fn read_u8(bytes: &[u8], off: usize) -> Option<u8> {
    bytes.get(off).copied()
}

/// A little-endian 16-bit register at `off`, or `None` if any byte is missing.
pub(crate) fn read_u16(bytes: &[u8], off: usize) -> Option<u16> {
    let end = off.checked_add(2)?;
    bytes.get(off..end)?.try_into().ok().map(u16::from_le_bytes)
}

/// A little-endian 32-bit register at `off`, or `None` if any byte is missing.
pub(crate) fn read_u32(bytes: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    bytes.get(off..end)?.try_into().ok().map(u32::from_le_bytes)
}

/// True when bit `n` of `value` is set.
pub(crate) fn bit(value: u32, n: u32) -> bool {
    value.checked_shr(n).is_some_and(|v| v & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian() {
        let b = [0x86, 0x80, 0x34, 0x12];
        assert_eq!(read_u8(&b, 1), Some(0x80));
        assert_eq!(read_u16(&b, 0), Some(0x8086));
        assert_eq!(read_u32(&b, 0), Some(0x1234_8086));
    }

    #[test]
    fn short_reads_are_none() {
        let b = [1u8, 2, 3];
        assert_eq!(read_u8(&b, 3), None);
        assert_eq!(read_u16(&b, 2), None);
        assert_eq!(read_u32(&b, 0), None);
        assert_eq!(read_u32(&b, usize::MAX), None);
        assert_eq!(read_u16(&[], 0), None);
    }

    #[test]
    fn bit_handles_large_shifts() {
        assert!(bit(0x8000_0000, 31));
        assert!(!bit(0x8000_0000, 30));
        assert!(!bit(u32::MAX, 32));
    }
}
