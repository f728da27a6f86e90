//! Vendor and device names from the system's `pci.ids`, read at run time.
//!
//! We read the file the host already has (pciutils ships it) rather than
//! embedding megabytes of names; a missing file only means hex IDs. One
//! pass over the file finds where each vendor's block is (the scan does
//! that while it reads devices); the names asked for are then picked out
//! of their vendors' blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where distributions put pci.ids, in the order pciutils looks.
const CANDIDATES: &[&str] = &[
    "/usr/share/misc/pci.ids",
    "/usr/share/hwdata/pci.ids",
    "/usr/share/pci.ids",
    "/usr/share/misc/pci.ids.gz",
];

/// The environment variable that points at another pci.ids (or at nothing:
/// an empty value or a missing file turns names off).
pub const PCI_IDS_ENV: &str = "P2PDOCTOR_PCI_IDS";

/// Names found for the IDs asked for.
#[derive(Debug, Default, Clone)]
pub struct Names {
    vendors: BTreeMap<u16, String>,
    devices: BTreeMap<(u16, u16), String>,
}

impl Names {
    pub fn vendor(&self, vendor: u16) -> Option<&str> {
        self.vendors.get(&vendor).map(String::as_str)
    }

    pub fn device(&self, vendor: u16, device: u16) -> Option<&str> {
        self.devices.get(&(vendor, device)).map(String::as_str)
    }
}

/// The pci.ids file this run would use.
pub fn locate() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(PCI_IDS_ENV) {
        let p = PathBuf::from(v);
        return (!p.as_os_str().is_empty() && p.is_file()).then_some(p);
    }
    CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Looks up names for `wanted` (vendor, device) pairs in the file at `path`.
pub fn lookup(path: &Path, wanted: &BTreeSet<(u16, u16)>) -> Names {
    Index::load(path).names(wanted)
}

/// The parser proper, on bytes (tolerant: a line it cannot read is skipped).
pub fn parse(text: &[u8], wanted: &BTreeSet<(u16, u16)>) -> Names {
    Index::new(text.to_vec()).names(wanted)
}

/// pci.ids split into vendor blocks, ready for [`names`](Self::names).
#[derive(Debug, Default)]
pub struct Index {
    text: Vec<u8>,
    /// Each vendor line's ID and the byte range of its block (that line
    /// and the lines below it up to the next vendor), in file order.
    blocks: Vec<(u16, Range<usize>)>,
}

impl Index {
    /// Reads (and if need be decompresses) the file; empty if unreadable.
    pub fn load(path: &Path) -> Index {
        let Ok(bytes) = std::fs::read(path) else {
            return Index::default();
        };
        if !bytes.starts_with(&[0x1f, 0x8b]) {
            return Index::new(bytes);
        }
        use std::io::Read;
        let mut text = Vec::new();
        match flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut text) {
            Ok(_) => Index::new(text),
            Err(_) => Index::default(),
        }
    }

    pub fn new(text: Vec<u8>) -> Index {
        let mut blocks: Vec<(u16, Range<usize>)> = Vec::new();
        let mut open: Option<(u16, usize)> = None;
        let mut end = 0;
        for line in lines(&text) {
            let start = end;
            end += line.len();
            match line.first() {
                // The class list at the end of the file ends the device lists.
                Some(b'C') if line.get(1) == Some(&b' ') => {
                    end = start;
                    break;
                }
                // A comment, a device or subsystem line, an empty line.
                Some(b'#' | b'\t' | b'\n') | None => {}
                // A vendor line (or garbage, which ends the block too).
                Some(_) => {
                    if let Some((id, from)) = open.take() {
                        blocks.push((id, from..start));
                    }
                    open = id_of(line).map(|id| (id, start));
                }
            }
        }
        if let Some((id, from)) = open {
            blocks.push((id, from..end));
        }
        Index { text, blocks }
    }

    /// Names for `wanted` (vendor, device) pairs, from their vendors'
    /// blocks only.
    pub fn names(&self, wanted: &BTreeSet<(u16, u16)>) -> Names {
        let vendors: BTreeSet<u16> = wanted.iter().map(|&(v, _)| v).collect();
        let mut names = Names::default();
        for (id, range) in &self.blocks {
            if vendors.contains(id) {
                parse_block(&self.text[range.clone()], wanted, &mut names);
            }
        }
        names
    }
}

/// The lines of `text`, each with its newline: split with the standard
/// library's memchr where the text is UTF-8 (pci.ids is 1.3 MB).
fn lines(text: &[u8]) -> Box<dyn Iterator<Item = &[u8]> + '_> {
    match std::str::from_utf8(text) {
        Ok(t) => Box::new(t.split_inclusive('\n').map(str::as_bytes)),
        Err(_) => Box::new(text.split_inclusive(|&b| b == b'\n')),
    }
}

/// One vendor's block: its line, then its devices (and subsystems).
fn parse_block(block: &[u8], wanted: &BTreeSet<(u16, u16)>, names: &mut Names) {
    let mut current: Option<u16> = None;
    for line in lines(block) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        match line.first() {
            Some(b'#') | None => continue,
            Some(b'\t') => {
                let Some(vendor) = current else { continue };
                // Two tabs: a subsystem line, which we do not use.
                if line.get(1) == Some(&b'\t') {
                    continue;
                }
                if let Some(id) = id_of(&line[1..])
                    && wanted.contains(&(vendor, id))
                    && let Some(name) = name_of(&line[1..])
                {
                    names.devices.insert((vendor, id), name);
                }
            }
            Some(_) => {
                if let Some(id) = id_of(line)
                    && let Some(name) = name_of(line)
                {
                    names.vendors.insert(id, name);
                    current = Some(id);
                }
            }
        }
    }
}

/// The four-digit hex ID a line starts with.
fn id_of(line: &[u8]) -> Option<u16> {
    let hex = std::str::from_utf8(line.get(..4)?).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

/// The name after the ID, if any.
fn name_of(line: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(line.get(4..)?).trim().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# comment\n\
8086  Intel Corporation\n\
\t2030  Sky Lake-E PCI Express Root Port A\n\
\t\t1028 0000  subsystem line\n\
\t09a2  Ice Lake Memory Map/VT-d\n\
10de  NVIDIA Corporation\n\
\t2330  GH100 [H100 SXM5 80GB]\n\
zzzz garbage\n\
\tdead  orphan device under garbage vendor\n\
C 00  Unclassified device\n\
\t00  Non-VGA unclassified device\n";

    #[test]
    fn finds_only_what_is_asked() {
        let wanted: BTreeSet<_> = [(0x8086, 0x2030), (0x10de, 0x2330), (0x1234, 0x1)].into();
        let n = parse(SAMPLE.as_bytes(), &wanted);
        assert_eq!(n.vendor(0x8086), Some("Intel Corporation"));
        assert_eq!(
            n.device(0x8086, 0x2030),
            Some("Sky Lake-E PCI Express Root Port A")
        );
        assert_eq!(n.device(0x8086, 0x09a2), None, "not asked for");
        assert_eq!(n.device(0x10de, 0x2330), Some("GH100 [H100 SXM5 80GB]"));
        assert_eq!(n.vendor(0x1234), None);
    }

    #[test]
    fn blocks_end_where_a_line_parse_would_reset() {
        let text = "# c\n\
1234  First\r\n\
\t0001  Dev one\r\n\
\r\n\
\t0002  Orphan\n\
1234  Again\n\
\t0003  Dev three\n\
# comment\n\
\n\
\t0004  After comment\n\
abcd\n\
\t0005  x\n\
C 00  Class\n\
5678  Late";
        let wanted: BTreeSet<_> = [
            (0x1234, 1),
            (0x1234, 2),
            (0x1234, 3),
            (0x1234, 4),
            (0xabcd, 5),
            (0x5678, 0),
        ]
        .into();
        for names in [
            parse(text.as_bytes(), &wanted),
            parse(&[text.as_bytes(), b"\xff"].concat(), &wanted),
        ] {
            assert_eq!(names.vendor(0x1234), Some("Again"), "the later entry");
            assert_eq!(names.device(0x1234, 1), Some("Dev one"));
            assert_eq!(names.device(0x1234, 2), None, "after a CR line");
            assert_eq!(names.device(0x1234, 3), Some("Dev three"));
            assert_eq!(names.device(0x1234, 4), Some("After comment"));
            assert_eq!(names.vendor(0xabcd), None);
            assert_eq!(names.device(0xabcd, 5), None, "a vendor without a name");
            assert_eq!(names.vendor(0x5678), None, "after the class list");
        }
    }

    #[test]
    fn garbage_is_skipped() {
        let n = parse(b"\xff\xfe\n\t\n12\n", &[(0x12, 0)].into());
        assert_eq!(n.vendor(0x12), None);
    }
}
