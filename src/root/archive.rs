//! Snapshot archives: told from other files by their magic, and loaded
//! into memory within bounds (a hostile archive cannot exhaust memory or
//! climb out with `..`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};

use super::Entry;
use super::limits::read_limit;

/// Upper bounds on what an archive may expand to, so a hostile snapshot
/// cannot exhaust memory: the tar stream after decompression, the file
/// contents kept, and the members.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
const MAX_ARCHIVE_KEPT: u64 = 256 << 20;
const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;

/// A gzip or tar file (what `p2pdoctor snapshot` writes), by its magic.
pub(super) fn is_archive_file(file: &fs::File) -> bool {
    use std::io::Seek;
    let mut head = [0u8; 262];
    let mut f = file;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = f.seek(io::SeekFrom::Start(0));
    head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// Normalises an archive member name: no leading `/` or `./`, and no `..`.
pub(super) fn archive_name(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Counts what passes, and fails once more than `limit` bytes have: an
/// archive that expands past it is too large (a bomb), not damaged.
struct Bounded<R> {
    inner: R,
    left: u64,
    /// Set when the bound was passed (shared: the tar reader owns this).
    tripped: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Only an error if there is more to come.
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => {
                    self.tripped.set(true);
                    Err(io::Error::other("too large"))
                }
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

/// What an archive held: its tree, and what was skipped (named, with why).
pub(crate) struct Loaded {
    pub entries: BTreeMap<String, Entry>,
    pub notes: Vec<String>,
}

/// Loads a gzip (or plain) tar archive into memory, within bounds: the
/// stream expands to at most [`MAX_ARCHIVE_BYTES`], each member holds no
/// more than [`read_limit`] allows for its path, and all kept contents at
/// most [`MAX_ARCHIVE_KEPT`]; past any of them the archive is "too large".
/// The gzip checksum is checked (the stream is read to its end). Hard
/// links are followed inside the archive; members that are not files,
/// directories or links are skipped with a note.
pub(crate) fn read_archive(file: impl Read) -> Result<Loaded, String> {
    read_archive_within(file, MAX_ARCHIVE_BYTES)
}

/// [`read_archive`] with the expansion bound given (tests use a small one).
pub(super) fn read_archive_within(mut file: impl Read, bound: u64) -> Result<Loaded, String> {
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let gzip = magic == [0x1f, 0x8b];
    let file = io::Cursor::new(magic).chain(file);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let tripped = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut archive = tar::Archive::new(Bounded {
        inner: reader,
        left: bound,
        tripped: tripped.clone(),
    });
    let too_large = || {
        format!(
            "too large: it expands to more than {} (a p2pdoctor snapshot is a few MiB)",
            crate::units::human_bytes(bound)
        )
    };
    let mut entries = BTreeMap::new();
    let mut notes = Vec::new();
    let mut kept: u64 = 0;
    let mut plain_checked = gzip;
    let iter = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for item in iter {
        let mut item = match item {
            Ok(i) => i,
            Err(_) if tripped.get() => return Err(too_large()),
            Err(e) if !plain_checked => return Err(format!("it is not a gzip or tar file ({e})")),
            Err(e) => return Err(format!("damaged archive: {e}")),
        };
        plain_checked = true;
        if entries.len() >= MAX_ARCHIVE_ENTRIES {
            return Err(format!(
                "too large: more than {MAX_ARCHIVE_ENTRIES} members"
            ));
        }
        let raw = item
            .path()
            .map_err(|e| format!("bad member name: {e}"))?
            .to_string_lossy()
            .into_owned();
        let Some(name) = archive_name(&raw) else {
            return Err(format!(
                "member `{raw}` climbs out of the archive with `..`"
            ));
        };
        let kind = item.header().entry_type();
        let entry = if kind.is_dir() {
            Entry::Dir
        } else if kind.is_symlink() {
            let target = item
                .link_name()
                .map_err(|e| format!("bad link in `{raw}`: {e}"))?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            Entry::Symlink(target)
        } else if kind.is_hard_link() {
            let target = item
                .link_name()
                .map_err(|e| format!("bad link in `{raw}`: {e}"))?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            match archive_name(&target).and_then(|t| entries.get(&t)) {
                Some(Entry::File(bytes)) => {
                    kept += bytes.len() as u64;
                    if kept > MAX_ARCHIVE_KEPT {
                        return Err(format!(
                            "too large: its files hold more than {}",
                            crate::units::human_bytes(MAX_ARCHIVE_KEPT)
                        ));
                    }
                    Entry::File(bytes.clone())
                }
                _ => {
                    notes.push(format!(
                        "archive member `{raw}` is a hard link to `{target}`, which is not a file earlier in the archive; skipped"
                    ));
                    continue;
                }
            }
        } else if kind.is_file() {
            let size = item.header().size().unwrap_or(u64::MAX);
            let limit = read_limit(&name);
            if size > limit {
                return Err(format!(
                    "too large: member `{raw}` holds {size} bytes, more than the {limit} such a file can"
                ));
            }
            kept += size;
            if kept > MAX_ARCHIVE_KEPT {
                return Err(format!(
                    "too large: its files hold more than {}",
                    crate::units::human_bytes(MAX_ARCHIVE_KEPT)
                ));
            }
            let mut buf = Vec::with_capacity(size as usize);
            match (&mut item).take(limit + 1).read_to_end(&mut buf) {
                Ok(_) => {}
                Err(_) if tripped.get() => return Err(too_large()),
                Err(e) => return Err(format!("damaged member `{raw}`: {e}")),
            }
            Entry::File(buf)
        } else {
            let what = match kind {
                tar::EntryType::Char => "a character device",
                tar::EntryType::Block => "a block device",
                tar::EntryType::Fifo => "a FIFO",
                _ => "not a file, directory or link",
            };
            notes.push(format!("archive member `{raw}` is {what}; skipped"));
            continue;
        };
        if !name.is_empty() {
            entries.insert(name, entry);
        }
    }
    // Read to the end, so the gzip trailer's CRC-32 and length are checked.
    let mut rest = archive.into_inner();
    match io::copy(&mut rest, &mut io::sink()) {
        Ok(_) => {}
        Err(_) if tripped.get() => return Err(too_large()),
        Err(e) => return Err(format!("damaged archive: {e}")),
    }
    if entries.is_empty() {
        return Err(if plain_checked {
            "it holds no files".to_string()
        } else {
            "it is not a gzip or tar file".to_string()
        });
    }
    Ok(Loaded { entries, notes })
}
