//! `snapshot --redact`: take out what identifies the machine before a
//! snapshot leaves the company, and list what was taken out.
//!
//! What goes:
//! - the host name (`proc/sys/kernel/hostname`, the manifest);
//! - PCIe Device Serial Numbers (the DSN extended capability in each raw
//!   `config` file, PCIe r6.0 §7.9.3);
//! - NVMe subsystem NQNs (`subsysnqn`): the NVMe default NQN carries the
//!   controller's serial number (NVMe Base 2.0 §4.5), vendor NQNs often do;
//! - MAC-like addresses (six or more `xx:` or `xx-` groups, InfiniBand's
//!   20-byte hardware addresses included), GUIDs in `xxxx:xxxx:xxxx:xxxx`
//!   form and UUIDs (the kernel command line's `root=UUID=`), in every text
//!   file: the command line, the kernel log, vendor tools' output.
//!
//! Each value is replaced by a pseudonym of the same shape, the same for
//! equal values within this snapshot (two functions of one device keep one
//! serial, two paths to one NVMe subsystem keep one NQN), so the analysis of
//! a redacted snapshot is the analysis of the original. Pseudonyms come from
//! a hash keyed at random for each run: they cannot be matched across
//! snapshots, or turned back into the original values.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use serde::Serialize;

use crate::root::Entry;

/// What was redacted, for the manifest: one line per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redaction {
    /// `host name`, `PCIe device serial numbers`, ...
    pub what: &'static str,
    /// How many values (occurrences) were replaced.
    pub count: usize,
    /// The archive paths they were in, sorted.
    pub files: Vec<String>,
}

/// What [`redact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// One line per kind that was found, in a fixed order.
    pub kinds: Vec<Redaction>,
    /// The pseudonym the host name got (for the manifest).
    pub host_name: Option<String>,
}

/// Replaces identifying values in `entries` (archive paths → contents) and
/// returns what it replaced, kinds with nothing found left out.
pub fn redact(entries: &mut BTreeMap<String, Entry>) -> Redacted {
    let mut r = Redactor::new();
    for (path, entry) in entries.iter_mut() {
        let Entry::File(bytes) = entry else { continue };
        if path == "proc/sys/kernel/hostname" {
            let name = String::from_utf8_lossy(bytes).trim().to_string();
            if !name.is_empty() {
                *bytes = format!("{}\n", r.host_name(&name)).into_bytes();
                r.note(Kind::HostName, path, 1);
            }
        } else if path.starts_with("sys/") && path.ends_with("/config") {
            if r.config_serial(bytes) {
                r.note(Kind::Dsn, path, 1);
            }
        } else if path.starts_with("sys/") && path.ends_with("/subsysnqn") {
            let nqn = String::from_utf8_lossy(bytes).trim().to_string();
            if !nqn.is_empty() {
                *bytes = format!("{}\n", r.nqn(&nqn)).into_bytes();
                r.note(Kind::Nqn, path, 1);
            }
        } else if is_text_file(path)
            && let Ok(text) = std::str::from_utf8(bytes)
        {
            let (out, counts) = r.text(text);
            if counts.iter().any(|&(_, n)| n > 0) {
                *bytes = out.into_bytes();
                for (kind, n) in counts {
                    if n > 0 {
                        r.note(kind, path, n);
                    }
                }
            }
        }
    }
    r.finish()
}

/// Files whose text may carry addresses or UUIDs: command lines, logs,
/// vendor tools' output (and anything else outside sys/ and proc/ that is
/// UTF-8). Binary and numeric sysfs attributes are not text in this sense
/// (and hold none).
fn is_text_file(path: &str) -> bool {
    path == "proc/cmdline"
        || path == crate::root::KERNEL_LOG_FILE
        || !path.starts_with("sys/") && !path.starts_with("proc/")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    HostName,
    Dsn,
    Nqn,
    Mac,
    Guid,
    Uuid,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::HostName => "host name",
            Kind::Dsn => "PCIe device serial numbers (DSN capability in config space)",
            Kind::Nqn => "NVMe subsystem NQNs (they carry controller serial numbers)",
            Kind::Mac => "MAC-like hardware addresses",
            Kind::Guid => "GUIDs (xxxx:xxxx:xxxx:xxxx)",
            Kind::Uuid => "UUIDs",
        }
    }
}

struct Redactor {
    key: RandomState,
    /// The host name's pseudonym, so the manifest can use the same one.
    host: Option<String>,
    found: BTreeMap<Kind, (usize, Vec<String>)>,
}

impl Redactor {
    fn new() -> Self {
        Redactor {
            key: RandomState::new(),
            host: None,
            found: BTreeMap::new(),
        }
    }

    fn hash(&self, kind: Kind, value: &[u8]) -> u64 {
        self.key.hash_one((kind as u8, value))
    }

    fn note(&mut self, kind: Kind, path: &str, n: usize) {
        let e = self.found.entry(kind).or_default();
        e.0 += n;
        if !e.1.iter().any(|p| p == path) {
            e.1.push(path.to_string());
        }
    }

    fn finish(self) -> Redacted {
        let kinds = self
            .found
            .into_iter()
            .map(|(kind, (count, mut files))| {
                files.sort();
                Redaction {
                    what: kind.what(),
                    count,
                    files,
                }
            })
            .collect();
        Redacted {
            kinds,
            host_name: self.host,
        }
    }

    fn host_name(&mut self, name: &str) -> String {
        let p = format!(
            "redacted-{:08x}",
            self.hash(Kind::HostName, name.as_bytes()) as u32
        );
        self.host = Some(p.clone());
        p
    }

    /// Overwrites the DSN in raw config bytes; whether there was one.
    fn config_serial(&self, config: &mut [u8]) -> bool {
        let decoded = crate::pci::decode(config);
        let Some(cap) = decoded.find_extended_capability(crate::pci::ECAP_ID_DSN) else {
            return false;
        };
        let at = usize::from(cap.offset) + 4;
        let Some(serial) = config.get_mut(at..at + 8) else {
            return false;
        };
        // Zero means "no serial" to the analysis (diff matches by nonzero
        // serials only); keep it zero.
        if serial.iter().all(|&b| b == 0) {
            return false;
        }
        let mut p = self.hash(Kind::Dsn, serial).to_le_bytes();
        if p == [0; 8] {
            p[0] = 1;
        }
        serial.copy_from_slice(&p);
        true
    }

    /// An NQN of the same kind: the NVMe default form keeps its vendor IDs
    /// and model and loses the serial; anything else becomes a UUID NQN.
    fn nqn(&self, nqn: &str) -> String {
        const DEFAULT: &str = "nqn.2014.08.org.nvmexpress:";
        let h = self.hash(Kind::Nqn, nqn.as_bytes());
        if let Some(rest) = nqn.strip_prefix(DEFAULT)
            && rest.len() >= 8 + 20
            && rest.is_char_boundary(8)
            && rest.is_char_boundary(28)
        {
            let (ids, tail) = rest.split_at(8);
            let model = &tail[20..];
            return format!(
                "{DEFAULT}{ids}{:<20}{model}",
                format!("REDACTED{:012X}", h >> 16)
            );
        }
        format!(
            "nqn.2014-08.org.nvmexpress:uuid:{}",
            uuid_of(h, self.hash(Kind::Uuid, nqn.as_bytes()))
        )
    }

    /// Replaces MAC-like addresses, GUIDs and UUIDs in `text`.
    fn text(&self, text: &str) -> (String, [(Kind, usize); 3]) {
        let mut out = String::with_capacity(text.len());
        let mut counts = [(Kind::Mac, 0), (Kind::Guid, 0), (Kind::Uuid, 0)];
        let b = text.as_bytes();
        let mut i = 0;
        let mut copied = 0;
        while i < b.len() {
            // Only at the start of a token: "0000:01:00.0" and hex inside
            // longer words are never touched.
            if i > 0 && b[i - 1].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            if let Some((kind, len)) = identifier_at(&b[i..]) {
                out.push_str(&text[copied..i]);
                let found = &text[i..i + len];
                out.push_str(&self.pseudonym(kind, found));
                counts[match kind {
                    Kind::Mac => 0,
                    Kind::Guid => 1,
                    _ => 2,
                }]
                .1 += 1;
                i += len;
                copied = i;
            } else {
                i += 1;
            }
        }
        out.push_str(&text[copied..]);
        (out, counts)
    }

    /// A value of the same shape: hex digits replaced, separators and case
    /// kept; a MAC gets the locally administered bit, as made-up MACs do.
    fn pseudonym(&self, kind: Kind, found: &str) -> String {
        let lower = found.to_ascii_lowercase();
        let mut h = self.hash(kind, lower.as_bytes());
        let mut salt = 0u8;
        let upper = found.bytes().any(|c| c.is_ascii_uppercase());
        let mut out = String::with_capacity(found.len());
        for (n, c) in found.chars().enumerate() {
            if !c.is_ascii_hexdigit() {
                out.push(c);
                continue;
            }
            if h == 0 || n % 16 == 15 {
                salt = salt.wrapping_add(1);
                h = self.hash(kind, &[lower.as_bytes(), &[salt]].concat()) | 1;
            }
            let mut nibble = (h & 0xf) as u32;
            h >>= 4;
            if kind == Kind::Mac && n == 1 {
                // Second hex digit of the first octet: locally administered,
                // unicast (bits 1 set, 0 clear).
                nibble = (nibble | 0x2) & !0x1;
            }
            let d = char::from_digit(nibble, 16).unwrap_or('0');
            out.push(if upper { d.to_ascii_uppercase() } else { d });
        }
        out
    }
}

/// The identifier starting at `b[0]`, if one does, and its length; it must
/// end at a non-alphanumeric byte or the end.
fn identifier_at(b: &[u8]) -> Option<(Kind, usize)> {
    let hex =
        |i: usize, n: usize| b.len() >= i + n && b[i..i + n].iter().all(u8::is_ascii_hexdigit);
    let ends = |i: usize| b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
    // UUID 8-4-4-4-12.
    if hex(0, 8)
        && b.get(8) == Some(&b'-')
        && hex(9, 4)
        && b.get(13) == Some(&b'-')
        && hex(14, 4)
        && b.get(18) == Some(&b'-')
        && hex(19, 4)
        && b.get(23) == Some(&b'-')
        && hex(24, 12)
        && ends(36)
    {
        return Some((Kind::Uuid, 36));
    }
    // GUID xxxx:xxxx:xxxx:xxxx.
    if hex(0, 4) && (0..3).all(|g| b.get(4 + g * 5) == Some(&b':') && hex(5 + g * 5, 4)) && ends(19)
    {
        return Some((Kind::Guid, 19));
    }
    // MAC-like: at least six two-digit groups joined by one separator.
    if hex(0, 2) {
        let sep = *b.get(2)?;
        if sep != b':' && sep != b'-' {
            return None;
        }
        let mut groups = 1;
        let mut i = 2;
        while b.get(i) == Some(&sep) && hex(i + 1, 2) && !hex(i + 3, 1) {
            groups += 1;
            i += 3;
        }
        if groups >= 6 && ends(i) {
            return Some((Kind::Mac, i));
        }
    }
    None
}

fn uuid_of(a: u64, b: u64) -> String {
    let x = (u128::from(a) << 64) | u128::from(b);
    let s = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> (String, [(Kind, usize); 3]) {
        Redactor::new().text(s)
    }

    #[test]
    fn macs_guids_and_uuids_go_and_pci_addresses_stay() {
        let input = "mlx5_core 0000:3b:00.0: MAC 0c:42:A1:5e:7f:10 port 1\n\
                     ib0: HW addr 00:00:10:87:fe:80:00:00:00:00:00:00:98:03:9b:03:00:8a:9c:5e\n\
                     node guid 9803:9b03:008a:9c5e root=UUID=0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9 ro\n\
                     pci 0000:00:01.0 ab:cd:ef bridge 01:00.0\n";
        let (out, counts) = text(input);
        for gone in [
            "0c:42:A1:5e:7f:10",
            "87:fe:80",
            "9803:9b03:008a:9c5e",
            "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
        ] {
            assert!(!out.contains(gone), "{gone} still in {out}");
        }
        for kept in [
            "0000:3b:00.0",
            "0000:00:01.0",
            "ab:cd:ef",
            "01:00.0",
            "root=UUID=",
            "port 1",
        ] {
            assert!(out.contains(kept), "{kept} lost from {out}");
        }
        assert_eq!(counts, [(Kind::Mac, 2), (Kind::Guid, 1), (Kind::Uuid, 1)]);
        // Same shape: lengths and separators kept.
        assert_eq!(out.len(), input.len());
        // Uppercase hex stays uppercase; the MAC becomes locally administered.
        let mac = &out[out.find("MAC ").unwrap() + 4..][..17];
        let first = u8::from_str_radix(&mac[..2], 16).unwrap();
        assert_eq!(first & 0x3, 0x2, "{mac}");
    }

    #[test]
    fn equal_values_get_equal_pseudonyms_within_one_run() {
        let r = Redactor::new();
        let (a, _) = r.text("x 0c:42:a1:5e:7f:10 y 0C:42:A1:5E:7F:10 z 0c:42:a1:5e:7f:11");
        let words: Vec<&str> = a.split(' ').collect();
        assert_eq!(words[1].to_ascii_lowercase(), words[3].to_ascii_lowercase());
        assert_ne!(words[1], words[5]);
        assert_eq!(r.nqn("nqn.x:serial1"), r.nqn("nqn.x:serial1"));
        assert_ne!(r.nqn("nqn.x:serial1"), r.nqn("nqn.x:serial2"));
    }

    #[test]
    fn default_nqn_keeps_vendor_and_model_and_loses_the_serial() {
        let nqn = "nqn.2014.08.org.nvmexpress:144d144dS4EWNX0R123456      Samsung SSD 980 PRO 1TB                 ";
        let out = Redactor::new().nqn(nqn);
        assert!(
            out.starts_with("nqn.2014.08.org.nvmexpress:144d144dREDACTED"),
            "{out}"
        );
        assert!(
            out.ends_with("Samsung SSD 980 PRO 1TB                 "),
            "{out}"
        );
        assert_eq!(out.len(), nqn.len());
        assert!(!out.contains("S4EWNX0R123456"));
        let other = Redactor::new().nqn("nqn.2019-10.com.example:nvme:S123");
        assert!(
            other.starts_with("nqn.2014-08.org.nvmexpress:uuid:"),
            "{other}"
        );
    }

    #[test]
    fn the_serial_in_config_space_is_replaced_and_zero_stays_zero() {
        let mut c = vec![0u8; 4096];
        c[0x34] = 0; // no standard list needed for the extended one
        // DSN at 0x100: ID 3, version 1, next 0.
        c[0x100..0x104].copy_from_slice(&0x0001_0003u32.to_le_bytes());
        c[0x104..0x10c].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let r = Redactor::new();
        let mut a = c.clone();
        assert!(r.config_serial(&mut a));
        assert_ne!(a[0x104..0x10c], c[0x104..0x10c]);
        assert_eq!(a[..0x104], c[..0x104]);
        assert_eq!(a[0x10c..], c[0x10c..]);
        let mut b = c.clone();
        r.config_serial(&mut b);
        assert_eq!(a, b, "one serial, one pseudonym");
        let mut zero = c.clone();
        zero[0x104..0x10c].fill(0);
        assert!(!r.config_serial(&mut zero));
        // Short (64-byte) config: nothing to do, no panic.
        assert!(!r.config_serial(&mut c[..64].to_vec()));
    }
}
