//! Vendor and device names from the system's `pci.ids`, read at run time.
//!
//! We read the file the host already has (pciutils ships it) rather than
//! embedding megabytes of names; a missing file only means hex IDs. One
//! pass over the file picks out just the IDs asked for.

use std::collections::{BTreeMap, BTreeSet};
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
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(_) => return Names::default(),
    };
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return Names::default();
        }
        out
    } else {
        bytes
    };
    parse(&text, wanted)
}

/// The parser proper, on bytes (tolerant: a line it cannot read is skipped).
pub fn parse(text: &[u8], wanted: &BTreeSet<(u16, u16)>) -> Names {
    // As text, lines split with the standard library's memchr: pci.ids is
    // 1.3 MB of which a few hundred lines are wanted. (Not UTF-8: by bytes.)
    match std::str::from_utf8(text) {
        Ok(t) => parse_lines(t.split('\n').map(str::as_bytes), wanted),
        Err(_) => parse_lines(text.split(|&b| b == b'\n'), wanted),
    }
}

fn parse_lines<'a>(lines: impl Iterator<Item = &'a [u8]>, wanted: &BTreeSet<(u16, u16)>) -> Names {
    let vendors: BTreeSet<u16> = wanted.iter().map(|&(v, _)| v).collect();
    let mut names = Names::default();
    let mut current: Option<u16> = None;
    for line in lines {
        match line.first() {
            // The class list at the end of the file ends the device lists.
            Some(b'C') if line.get(1) == Some(&b' ') => break,
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
                current = None;
                if let Some(id) = id_of(line)
                    && vendors.contains(&id)
                    && let Some(name) = name_of(line)
                {
                    names.vendors.insert(id, name);
                    current = Some(id);
                }
            }
        }
    }
    names
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
    fn garbage_is_skipped() {
        let n = parse(b"\xff\xfe\n\t\n12\n", &[(0x12, 0)].into());
        assert_eq!(n.vendor(0x12), None);
    }
}
