//! The system root: where the machine's files are read from.
//!
//! Everything p2pdoctor knows about a machine comes from files below a root:
//! the live `/`, a captured tree laid out like the live filesystem, or a
//! snapshot archive held in memory. Paths are root-relative strings with `/`
//! separators (`sys/bus/pci/devices/0000:00:01.0/config`).
//!
//! Symbolic links are resolved here, one component at a time, against the
//! root rather than the host: an absolute target is re-rooted and `..` stops
//! at the root, so a hostile capture can never make us read outside it.
//!
//! On a directory root the scan's hot paths go faster without giving that
//! up: directories resolved once are held open (O_PATH) and names are
//! looked up relative to them with `openat`/`readlinkat`/`openat2`, never
//! following a symlink in the kernel; a symlink met there goes back
//! through the resolver.
//!
//! A root can record what is read through it; `snapshot` uses the record to
//! capture exactly what the analysis reads.
//!
//! The parts, one job each:
//! - `resolve`: symlinks resolved inside the root, component by
//!   component (and, in memory, from the last deep path resolved);
//! - `handle`: directories resolved once and held open, and the reads
//!   relative to them (the scan's hot path);
//! - `memtree`: the in-memory tree a snapshot archive is loaded into;
//! - `archive`: reading a snapshot archive, within bounds;
//! - `evidence`: lspci output and other pastes given as the root;
//! - `record`: recording what is read, for `snapshot`;
//! - `limits`: how large each kind of file may be;
//! - `sys`: the system calls under all of it (opening without
//!   following links, reading only regular files within their bound).

mod archive;
mod evidence;
mod handle;
mod limits;
mod memtree;
mod record;
mod resolve;
mod sys;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use evidence::MAX_EVIDENCE_BYTES;
pub use handle::DirHandle;
pub use limits::{MAX_CONFIG, MAX_SYSFS_ATTRIBUTE, read_limit};
pub use sys::FileParts;

use archive::{is_archive_file, read_archive};
use evidence::{evidence_in_dir, read_bounded};
use memtree::MemTree;
use sys::{Refused, read_nofollow};

/// The name of the kernel-log file inside a captured tree or snapshot.
pub const KERNEL_LOG_FILE: &str = "p2pdoctor-kernel.log";
/// The manifest inside a snapshot archive.
pub const MANIFEST_FILE: &str = "p2pdoctor-manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("cannot open `{path}` as a system root")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "`{path}` is neither a directory nor a p2pdoctor snapshot (a .tar.gz made by `p2pdoctor snapshot`): {reason}"
    )]
    NotASnapshot { path: PathBuf, reason: String },
    #[error("`{path}` cannot be loaded as a snapshot: {reason}")]
    TooLarge { path: PathBuf, reason: String },
    #[error(
        "`{path}` has no sys/ directory, so it is not a captured tree: a root is laid out like / (PATH/sys/bus/pci/devices, PATH/proc/cmdline, ...); point --root at its top, at a snapshot archive, or at lspci output (a file, or a directory holding lspci*.txt)"
    )]
    NoSys { path: PathBuf },
    #[error("`{path}`: {reason}")]
    NotEvidence { path: PathBuf, reason: String },
}

/// One entry of an in-memory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// What one root-relative path is, without following it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(String),
}

#[derive(Debug)]
enum Backing {
    /// A directory on this machine: `/` for the live system, or a capture.
    Dir { base: PathBuf, live: bool },
    /// A snapshot archive loaded into memory.
    Memory { source: PathBuf, tree: MemTree },
}

/// The root the scan reads from.
#[derive(Debug)]
pub struct SystemRoot {
    backing: Backing,
    /// Symlink-ness of canonical prefixes already looked at (Dir backing);
    /// sysfs paths share long prefixes, so this saves most lstat calls.
    kinds: RwLock<HashMap<String, Option<Kind>>>,
    /// Parent directories of what `open_dir` followed, resolved and held
    /// open, by the path they were reached as: the functions below one
    /// bridge share their links' parent.
    /// (Held while fewer than [`MAX_HELD`](handle::MAX_HELD) are; past
    /// that, by path.)
    dirs: RwLock<HashMap<String, Arc<DirHandle>>>,
    recorder: Option<Mutex<BTreeMap<String, Entry>>>,
    /// Files refused (not regular, too large) and archive members skipped,
    /// each said once: the scan turns them into notes.
    notes: Mutex<Vec<String>>,
    /// Tells this root's cursor (see `cursor_skip`) from another's.
    id: u64,
    /// lspci output, a paste or an hwloc export given as the root (the
    /// backing is then an empty in-memory tree).
    evidence: Option<String>,
}

impl SystemRoot {
    /// The running machine.
    pub fn live() -> Self {
        Self::with_backing(Backing::Dir {
            base: PathBuf::from("/"),
            live: true,
        })
    }

    /// Opens `path`: a directory is a captured tree (or `/`, which is
    /// live), or, without sysfs but with saved `lspci*` output, evidence; a
    /// file is a snapshot archive (by its magic or its name) or evidence.
    pub fn open(path: &Path) -> Result<Self, RootError> {
        let meta = fs::metadata(path).map_err(|source| RootError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let live = fs::canonicalize(path)
                .map(|p| p == Path::new("/"))
                .unwrap_or(false);
            if !live
                && !path.join("sys/bus/pci/devices").is_dir()
                && let Some(bytes) = evidence_in_dir(path)
            {
                return Self::from_evidence(&path.display().to_string(), bytes);
            }
            // Everything the analysis reads is below sys/: without it the
            // root is the wrong directory, not an empty machine.
            if !path.join("sys").is_dir() {
                return Err(RootError::NoSys {
                    path: path.to_path_buf(),
                });
            }
            return Ok(Self::with_backing(Backing::Dir {
                base: path.to_path_buf(),
                live,
            }));
        }
        let file = fs::File::open(path).map_err(|source| RootError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let archive_name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .is_some_and(|n| n.ends_with(".tar.gz") || n.ends_with(".tgz") || n.ends_with(".tar"));
        if !is_archive_file(&file) && !archive_name {
            // Not a snapshot: lspci output, a ticket paste, an hwloc export.
            let bytes = read_bounded(file).map_err(|source| RootError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            return Self::from_evidence(&path.display().to_string(), bytes);
        }
        let loaded = read_archive(io::BufReader::new(file)).map_err(|reason| {
            let path = path.to_path_buf();
            if reason.starts_with("too large") {
                RootError::TooLarge { path, reason }
            } else {
                RootError::NotASnapshot { path, reason }
            }
        })?;
        let root = Self::from_entries(path, loaded.entries);
        for n in loaded.notes {
            root.add_note(n);
        }
        Ok(root)
    }

    /// Reads standard input whole (`--root -`): a snapshot archive or an
    /// evidence file, told apart as `open` tells files apart.
    pub fn stdin() -> Result<Self, RootError> {
        let path = PathBuf::from("-");
        let bytes = read_bounded(io::stdin().lock()).map_err(|source| RootError::Open {
            path: path.clone(),
            source,
        })?;
        let gzip = bytes.starts_with(&[0x1f, 0x8b]);
        let tar = bytes.get(257..262) == Some(b"ustar");
        if gzip || tar {
            let loaded = read_archive(io::Cursor::new(bytes)).map_err(|reason| {
                if reason.starts_with("too large") {
                    RootError::TooLarge {
                        path: path.clone(),
                        reason,
                    }
                } else {
                    RootError::NotASnapshot {
                        path: path.clone(),
                        reason,
                    }
                }
            })?;
            let root = Self::from_entries(Path::new("standard input"), loaded.entries);
            for n in loaded.notes {
                root.add_note(n);
            }
            return Ok(root);
        }
        Self::from_evidence("standard input", bytes)
    }

    /// A root over an evidence file's text: no files below it; the scan
    /// parses the text instead (`scan::evidence`). The text is checked to
    /// be something the parsers know before any work is done on it.
    pub fn from_evidence(label: &str, bytes: Vec<u8>) -> Result<Self, RootError> {
        let text = crate::scan::evidence::decode_text(bytes);
        crate::scan::evidence::recognise(&text).map_err(|e| RootError::NotEvidence {
            path: PathBuf::from(label),
            reason: e.to_string(),
        })?;
        let mut root = Self::from_entries(Path::new(label), BTreeMap::new());
        root.evidence = Some(text);
        Ok(root)
    }

    /// The evidence text, for a root opened on one.
    pub fn evidence(&self) -> Option<&str> {
        self.evidence.as_deref()
    }

    /// A root over an in-memory tree (a loaded snapshot, or a test's).
    pub fn from_entries(source: &Path, entries: BTreeMap<String, Entry>) -> Self {
        Self::with_backing(Backing::Memory {
            source: source.to_path_buf(),
            tree: MemTree::new(entries),
        })
    }

    fn with_backing(backing: Backing) -> Self {
        SystemRoot {
            backing,
            kinds: RwLock::new(HashMap::new()),
            dirs: RwLock::new(HashMap::new()),
            recorder: None,
            notes: Mutex::new(Vec::new()),
            evidence: None,
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }
    }

    /// What was refused or skipped while reading (a FIFO where a file
    /// belongs, a file larger than the kernel makes, an archive member that
    /// is not a file), one line each, naming the file and the reason.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    fn add_note(&self, note: String) {
        if let Ok(mut n) = self.notes.lock()
            && !n.contains(&note)
        {
            n.push(note);
        }
    }

    /// Turns a refusal from [`read_file`](sys::read_file) into an error
    /// naming `path`, and notes it; other errors pass as they are.
    fn named(&self, path: &str, e: io::Error) -> io::Error {
        match e.get_ref().and_then(|i| i.downcast_ref::<Refused>()) {
            Some(Refused(why)) => {
                let msg = format!("{path}: {why}; not read");
                self.add_note(msg.clone());
                io::Error::new(io::ErrorKind::InvalidData, msg)
            }
            None => e,
        }
    }

    /// True for the running machine (then the kernel log is `/dev/kmsg`).
    pub fn is_live(&self) -> bool {
        matches!(self.backing, Backing::Dir { live: true, .. })
    }

    /// True when the root is a snapshot archive.
    pub fn is_archive(&self) -> bool {
        matches!(self.backing, Backing::Memory { .. })
    }

    /// How to name this root to a user.
    pub fn describe(&self) -> String {
        if self.evidence.is_some()
            && let Backing::Memory { source, .. } = &self.backing
        {
            return format!("the evidence file {}", source.display());
        }
        match &self.backing {
            Backing::Dir { live: true, .. } => "the live system (/)".to_string(),
            Backing::Dir { base, .. } => format!("the captured tree {}", base.display()),
            Backing::Memory { source, .. } => format!("the snapshot {}", source.display()),
        }
    }

    /// Reads a whole file, following symlinks inside the root.
    pub fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        if let Backing::Dir { base, .. } = &self.backing {
            // Fast path for the common case, a regular file in a directory:
            // resolve only the directory (cached) and open the last
            // component without following it. A symlink there fails with
            // ELOOP and takes the general path below.
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            if !matches!(name, "" | "." | "..") {
                let dir = self.resolve(dir, true)?;
                let canonical = join(&dir, name);
                match read_nofollow(&base.join(&canonical), read_limit(&canonical)) {
                    Ok(bytes) => {
                        if self.recorder.is_some() {
                            self.note(&canonical, Entry::File(bytes.clone()));
                        }
                        return Ok(bytes);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {}
                    Err(e) => return Err(self.named(&canonical, e)),
                }
            }
        }
        let (canonical, node) = self.resolve_in(path, true)?;
        let bytes = match &self.backing {
            Backing::Dir { base, .. } => {
                read_nofollow(&base.join(&canonical), read_limit(&canonical))
                    .map_err(|e| self.named(&canonical, e))?
            }
            Backing::Memory { tree, .. } => match node.map(|id| &tree.node(id).entry) {
                Some(Entry::File(b)) => b.clone(),
                Some(_) => return Err(io::Error::other(format!("{canonical}: is a directory"))),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{canonical}: no such file"),
                    ));
                }
            },
        };
        if self.recorder.is_some() {
            self.note(&canonical, Entry::File(bytes.clone()));
        }
        Ok(bytes)
    }

    /// Reads a text attribute, trimmed of surrounding white space.
    pub fn read_string(&self, path: &str) -> io::Result<String> {
        let bytes = self.read(path)?;
        Ok(trimmed_text(&bytes))
    }

    /// The target of the symlink at `path` (whose parents are resolved).
    pub fn read_link(&self, path: &str) -> io::Result<String> {
        let canonical = self.resolve(path, false)?;
        match self.kind(&canonical)? {
            Some(Kind::Symlink(t)) => {
                self.note(&canonical, Entry::Symlink(t.clone()));
                Ok(t)
            }
            Some(_) => Err(io::Error::other(format!(
                "{canonical}: not a symbolic link"
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{canonical}: no such file"),
            )),
        }
    }

    /// The last component of where the symlink at `path` points
    /// (`driver` → `nvme`, `iommu_group` → `12`).
    pub fn link_name(&self, path: &str) -> Option<String> {
        let target = self.read_link(path).ok()?;
        split(&target).next_back().map(str::to_string)
    }

    /// True when `path` exists (following symlinks). While recording, what
    /// was found is recorded too, so the answer survives a snapshot.
    pub fn exists(&self, path: &str) -> bool {
        let Ok(canonical) = self.resolve(path, true) else {
            return false;
        };
        match self.kind(&canonical) {
            Ok(Some(Kind::Dir)) => {
                self.note(&canonical, Entry::Dir);
                true
            }
            Ok(Some(_)) => {
                if self.recorder.is_some() {
                    let _ = self.read(&canonical);
                }
                true
            }
            _ => false,
        }
    }

    /// The names in a directory, sorted.
    pub fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let (canonical, node) = self.resolve_in(path, true)?;
        let mut names: Vec<String> = match &self.backing {
            Backing::Dir { base, .. } => fs::read_dir(base.join(&canonical))?
                .filter_map(|e| e.ok())
                .map(|e| {
                    e.file_name()
                        .into_string()
                        .unwrap_or_else(|n| n.to_string_lossy().into_owned())
                })
                .collect(),
            Backing::Memory { tree, .. } => match node {
                Some(id) if tree.kind(id) == Kind::Dir => tree.names(id),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{canonical}: not a directory"),
                    ));
                }
            },
        };
        names.sort_unstable();
        if self.recorder.is_some() {
            self.note(&canonical, Entry::Dir);
            // Record every entry listed, so the listing survives a snapshot.
            // A file's content is kept only when it is read; until then it
            // stands as an empty placeholder.
            for name in &names {
                let child = join(&canonical, name);
                match self.kind(&child) {
                    Ok(Some(Kind::Symlink(t))) => self.note(&child, Entry::Symlink(t)),
                    Ok(Some(Kind::Dir)) => self.note(&child, Entry::Dir),
                    Ok(Some(Kind::File)) => self.note_placeholder(&child),
                    _ => {}
                }
            }
        }
        Ok(names)
    }
}

/// A single path component, safe to look up relative to a directory.
fn is_name(name: &str) -> bool {
    !name.contains('/') && !matches!(name, "" | "." | "..")
}

/// A text attribute without the surrounding white space.
fn trimmed_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.trim().to_string(),
        Err(_) => String::from_utf8_lossy(bytes).trim().to_string(),
    }
}

/// Joins a root-relative directory and a name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        return name.to_string();
    }
    // Not format!: this is on every path of a scan.
    let mut path = String::with_capacity(dir.len() + 1 + name.len());
    path.push_str(dir);
    path.push('/');
    path.push_str(name);
    path
}

fn split(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}
