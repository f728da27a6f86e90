//! PCI addresses: domain (segment), bus, device, function.

use std::fmt;
use std::str::FromStr;

/// A PCI function address as Linux prints it: `dddd:bb:dd.f`.
///
/// The domain is a `u32` because Intel VMD domains start at 0x10000 and are
/// printed with five hex digits (`10000:e1:00.0`).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// PCI domain (segment), 16 bits on most machines, more on VMD.
    pub domain: u32,
    /// Bus number.
    pub bus: u8,
    /// Device number, 0-31.
    pub device: u8,
    /// Function number, 0-7.
    pub function: u8,
}

impl Bdf {
    /// The address `domain:bus:device.function`.
    pub fn new(domain: u32, bus: u8, device: u8, function: u8) -> Self {
        Bdf {
            domain,
            bus,
            device,
            function,
        }
    }

    /// The 8-bit devfn the kernel uses (`PCI_DEVFN`).
    pub fn devfn(&self) -> u8 {
        (self.device << 3) | (self.function & 7)
    }

    /// True when both addresses are functions of one device (same slot).
    pub fn same_device(&self, other: &Bdf) -> bool {
        self.domain == other.domain && self.bus == other.bus && self.device == other.device
    }
}

impl fmt::Display for Bdf {
    /// `{:04x}:{:02x}:{:02x}.{:x}`, spelled out: addresses are printed by
    /// the thousand, and write! with padded hex is slow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Ascii::default();
        out.hex(self.domain, 4);
        out.push(b':');
        out.hex(self.bus.into(), 2);
        out.push(b':');
        out.hex(self.device.into(), 2);
        out.push(b'.');
        out.hex(self.function.into(), 1);
        f.write_str(out.as_str())
    }
}

/// A short ASCII string built on the stack (an address is at most 17).
#[derive(Default)]
struct Ascii {
    buf: [u8; 20],
    len: usize,
}

impl Ascii {
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` in lowercase hex, at least `min_digits` long.
    fn hex(&mut self, value: u32, min_digits: u32) {
        let digits = (value.max(1).ilog2() / 4 + 1).max(min_digits);
        for i in (0..digits).rev() {
            self.push(b"0123456789abcdef"[(value >> (4 * i) & 0xf) as usize]);
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a BDF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a PCI address; expected DOMAIN:BUS:DEVICE.FUNCTION such as 0000:03:00.0")]
pub struct BdfParseError(pub String);

impl FromStr for Bdf {
    type Err = BdfParseError;

    /// Accepts `dddd:bb:dd.f` (any number of domain digits up to 8) and, like
    /// lspci and setpci, the short `bb:dd.f` meaning domain 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The form sysfs names every function with, without the general
        // splitting below (a scan parses several per device); anything
        // else, or anything invalid, takes the general path.
        if let &[d0, d1, d2, d3, b':', b0, b1, b':', s0, s1, b'.', f] = s.as_bytes() {
            let hex = |digits: &[u8]| {
                digits
                    .iter()
                    .try_fold(0u32, |v, &d| Some(v << 4 | nibble(d)?))
            };
            if let (Some(domain), Some(bus), Some(device), Some(function)) = (
                hex(&[d0, d1, d2, d3]),
                hex(&[b0, b1]),
                hex(&[s0, s1]),
                hex(&[f]),
            ) && device <= 0x1f
                && function <= 7
            {
                return Ok(Bdf::new(domain, bus as u8, device as u8, function as u8));
            }
        }
        parse_any(s)
    }
}

/// Every accepted form: `dddd:bb:dd.f` with 1-8 domain digits, `bb:dd.f`.
fn parse_any(s: &str) -> Result<Bdf, BdfParseError> {
    let err = || BdfParseError(s.to_string());
    let (rest, function) = s.rsplit_once('.').ok_or_else(err)?;
    let mut parts = rest.rsplit(':');
    let device = parts.next().ok_or_else(err)?;
    let bus = parts.next().ok_or_else(err)?;
    let domain = parts.next().unwrap_or("0");
    if parts.next().is_some() {
        return Err(err());
    }
    let hex = |t: &str, max_len: usize| -> Result<u32, BdfParseError> {
        if t.is_empty() || t.len() > max_len || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        u32::from_str_radix(t, 16).map_err(|_| err())
    };
    let domain = hex(domain, 8)?;
    let bus = hex(bus, 2)?;
    let device = hex(device, 2)?;
    let function = hex(function, 1)?;
    if device > 0x1f || function > 7 {
        return Err(err());
    }
    Ok(Bdf::new(domain, bus as u8, device as u8, function as u8))
}

/// The value of one hex digit.
fn nibble(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(b - b'A' + 10)),
        _ => None,
    }
}

impl serde::Serialize for Bdf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Bdf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_linux_form() {
        let b: Bdf = "0000:03:00.1".parse().unwrap();
        assert_eq!(b, Bdf::new(0, 3, 0, 1));
        assert_eq!(b.to_string(), "0000:03:00.1");
        assert_eq!(b.devfn(), 1);
    }

    #[test]
    fn display_matches_the_format_string() {
        for b in [
            Bdf::new(0, 0, 0, 0),
            Bdf::new(0xabcd, 0xef, 0x1f, 7),
            Bdf::new(0x10000, 0xe1, 3, 1),
            Bdf::new(u32::MAX, 255, 255, 255),
        ] {
            let expected = format!(
                "{:04x}:{:02x}:{:02x}.{:x}",
                b.domain, b.bus, b.device, b.function
            );
            assert_eq!(b.to_string(), expected);
        }
    }

    #[test]
    fn vmd_domain_has_five_digits() {
        let b: Bdf = "10000:e1:1f.7".parse().unwrap();
        assert_eq!(b.domain, 0x10000);
        assert_eq!(b.to_string(), "10000:e1:1f.7");
    }

    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        for s in [
            "0000:03:00.1",
            "ABCD:EF:1f.7",
            "0000:00:20.0",
            "0000:00:00.8",
            "000g:00:00.0",
            "+000:00:00.0",
            "0000-00:00.0",
            "0000:00:00:0",
        ] {
            assert_eq!(s.parse::<Bdf>(), parse_any(s), "{s}");
        }
    }

    #[test]
    fn short_form_means_domain_zero() {
        assert_eq!("3:0.0".parse::<Bdf>().unwrap(), Bdf::new(0, 3, 0, 0));
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "0000:03:00",
            "0000:03:20.0",
            "0000:03:00.8",
            "zz:00.0",
            "1:2:3:4.0",
            "0000:123:00.0",
        ] {
            assert!(s.parse::<Bdf>().is_err(), "{s}");
        }
    }

    #[test]
    fn orders_by_domain_then_bus() {
        let mut v = [
            Bdf::new(1, 0, 0, 0),
            Bdf::new(0, 0x10, 0, 0),
            Bdf::new(0, 2, 0, 0),
        ];
        v.sort();
        assert_eq!(v[0], Bdf::new(0, 2, 0, 0));
        assert_eq!(v[2], Bdf::new(1, 0, 0, 0));
    }
}
