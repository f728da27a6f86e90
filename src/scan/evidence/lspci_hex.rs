//! Hex dumps of config space: `lspci -x` (64 bytes), `-xxx` (256),
//! `-xxxx` (4096), each below its function's header line and optionally
//! below its `-v` text; the same layout is what `lspci -F FILE` reads back
//! (lspci.c `show_hex_dump()`: `%02x:` then 16 × ` %02x`, 16 bytes a line;
//! `%03x:` from 0x100).

/// One line of a dump: its offset and its bytes. Lines that only look like
/// one (`10: ...` in prose) are told apart by the all-hex byte pairs.
#[derive(Debug, PartialEq, Eq)]
pub enum HexLine {
    /// A whole line: 16 bytes at this offset.
    Full(u16, [u8; 16]),
    /// A line cut short or with a damaged byte: the bytes before it.
    Cut(u16, Vec<u8>),
}

/// A cheap first look: two or three hex digits and a colon at the start.
pub fn looks_like_hex(line: &str) -> bool {
    let b = line.as_bytes();
    let hexd = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_hexdigit());
    hexd(0) && hexd(1) && (b.get(2) == Some(&b':') || (hexd(2) && b.get(3) == Some(&b':')))
}

/// Parses `00: 86 80 20 20 ...`. None for a line that is not a dump line.
pub fn parse(line: &str) -> Option<HexLine> {
    let (off, rest) = line.split_once(':')?;
    let off = off.trim_start();
    if !(2..=3).contains(&off.len()) || !off.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let offset = u16::from_str_radix(off, 16).ok()?;
    if offset % 16 != 0 || offset >= 0x1000 {
        return None;
    }
    let b = rest.as_bytes();
    // The common case: exactly ` xx` sixteen times.
    if b.len() >= 48 {
        let mut out = [0u8; 16];
        let mut ok = true;
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * 3;
            match (b[at], hex(b[at + 1]), hex(b[at + 2])) {
                (b' ', Some(h), Some(l)) => *o = h << 4 | l,
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if ok && rest[48..].trim().is_empty() {
            return Some(HexLine::Full(offset, out));
        }
    }
    let mut bytes = Vec::new();
    for w in rest.split_whitespace() {
        match w.as_bytes() {
            [h, l] if hex(*h).is_some() && hex(*l).is_some() => {
                bytes.push(hex(*h)? << 4 | hex(*l)?);
            }
            _ => break,
        }
        if bytes.len() == 16 {
            break;
        }
    }
    // `10: see below` is prose; one byte pair at least makes it a dump.
    if bytes.is_empty() {
        return None;
    }
    Some(HexLine::Cut(offset, bytes))
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A function's dump as it is collected: bytes land at their offsets; the
/// usable config space is the run from offset 0 without a hole.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    bytes: Vec<u8>,
    /// Bytes seen per 16-byte line (a bit each, 256 lines).
    seen: Vec<u64>,
    pub first_line: usize,
}

impl Dump {
    pub fn new(first_line: usize) -> Dump {
        Dump {
            bytes: Vec::new(),
            seen: vec![0; 4],
            first_line,
        }
    }

    /// Puts `data` at `offset`.
    pub fn put(&mut self, offset: u16, data: &[u8]) {
        let at = usize::from(offset);
        let end = (at + data.len()).min(0x1000);
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(if at == 0 && data.len() == 16 {
                256
            } else {
                4096
            });
        }
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[at..end].copy_from_slice(&data[..end - at]);
        if data.len() == 16 {
            let line = at / 16;
            self.seen[line / 64] |= 1 << (line % 64);
        }
    }

    /// The config bytes from 0 up to the first line not seen whole.
    pub fn config(mut self) -> Vec<u8> {
        let whole = (0..256)
            .take_while(|&l| self.seen[l / 64] & (1 << (l % 64)) != 0)
            .count();
        self.bytes.truncate(whole * 16);
        self.bytes
    }

    /// How many bytes a whole prefix would give (for notes).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let l = "00: 86 80 20 20 00 00 00 00 04 00 00 06 10 00 00 00";
        let Some(HexLine::Full(0, b)) = parse(l) else {
            panic!()
        };
        assert_eq!(&b[..4], &[0x86, 0x80, 0x20, 0x20]);
        assert!(matches!(
            parse("100: 0d 00 01 16 1f 00 00 00 02 68 00 00 00 00 00 00"),
            Some(HexLine::Full(0x100, _))
        ));
        assert_eq!(
            parse("30: 00 00 00"),
            Some(HexLine::Cut(0x30, vec![0, 0, 0]))
        );
        assert_eq!(parse("10: see below"), None);
        assert_eq!(parse("00:02.0 PCI bridge: Intel"), None);
        assert_eq!(parse("07: 00"), None);
    }

    #[test]
    fn holes_end_the_config() {
        let mut d = Dump::new(1);
        d.put(0, &[1; 16]);
        d.put(0x10, &[2; 16]);
        d.put(0x30, &[3; 16]);
        assert_eq!(d.config().len(), 32);
    }
}
