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

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Symlinks followed while resolving one path before we call it a loop
/// (the kernel's MAXSYMLINKS is 40).
const MAX_SYMLINKS: usize = 40;

/// Upper bounds on what an archive may expand to, so a hostile snapshot
/// cannot exhaust memory.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;

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
    #[error("`{path}`: {reason}")]
    NotEvidence { path: PathBuf, reason: String },
}

/// The most an evidence file may hold: a paste of a large server's
/// `lspci -vvv -xxxx` is about 20 MB.
pub const MAX_EVIDENCE_BYTES: u64 = 256 << 20;

/// A gzip or tar file (what `p2pdoctor snapshot` writes), by its magic.
fn is_archive_file(file: &fs::File) -> bool {
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

/// A directory without sysfs that holds command output instead: files
/// named after the command, as people save them (`lspci.txt`,
/// `lspci-vvv.txt`) and as sosreport does (`sos_commands/pci/lspci_-nnvv`,
/// `sos_commands/kernel/uname_-a`, `proc/cmdline`, `proc/cpuinfo`). Their
/// contents, each below a prompt naming the command, are one paste.
fn evidence_in_dir(dir: &Path) -> Option<Vec<u8>> {
    let listed = |sub: &str, prefix: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir.join(sub))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut lspci = listed("", "lspci");
    lspci.extend(listed("sos_commands/pci", "lspci"));
    if lspci.is_empty() {
        return None;
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (cmd, rel) in [
        ("uname -a", "sos_commands/kernel/uname_-a"),
        ("cat /proc/cmdline", "proc/cmdline"),
        ("cat /proc/cpuinfo", "proc/cpuinfo"),
    ] {
        if dir.join(rel).is_file() {
            files.push((cmd.to_string(), dir.join(rel)));
        }
    }
    for p in listed("", "uname") {
        files.push(("uname -a".to_string(), p));
    }
    for p in lspci {
        // `lspci_-nnvv` → `lspci -nnvv`
        let name = p.file_name()?.to_string_lossy().replace('_', " ");
        files.push((name.trim_end_matches(".txt").to_string(), p));
    }
    let mut out = Vec::new();
    for (cmd, p) in files {
        let bytes = read_bounded(fs::File::open(&p).ok()?).ok()?;
        if out.len() + bytes.len() > MAX_EVIDENCE_BYTES as usize {
            break;
        }
        out.extend_from_slice(format!("$ {cmd}\n").as_bytes());
        out.extend_from_slice(&bytes);
        out.extend_from_slice(b"\n");
    }
    Some(out)
}

/// Reads a whole evidence file, refusing one beyond [`MAX_EVIDENCE_BYTES`].
fn read_bounded(r: impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(MAX_EVIDENCE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_EVIDENCE_BYTES {
        return Err(io::Error::other(format!(
            "more than {} MiB: not an lspci paste",
            MAX_EVIDENCE_BYTES >> 20
        )));
    }
    Ok(bytes)
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
    Memory {
        source: PathBuf,
        entries: BTreeMap<String, Entry>,
    },
}

/// A directory resolved once to read several entries of (a device's sysfs
/// directory). On a directory root that is not recording it is also held
/// open, so each read is a one-component lookup relative to it rather than
/// a walk of the whole path.
#[derive(Debug)]
pub struct DirHandle {
    path: String,
    fd: Option<OwnedFd>,
}

impl DirHandle {
    /// The canonical root-relative path.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn into_path(self) -> String {
        self.path
    }
}

/// Directories held open at most, so a huge tree cannot run the process
/// out of file descriptors (a 4096-function server has ~200 parents).
const MAX_HELD: usize = 256;

/// What the last component of a path turned out to be (see `open_dir`).
enum Last {
    Dir(OwnedFd),
    Link(String),
    /// A file: resolved like any path, though reading in it will fail.
    Other,
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
    /// (Held while fewer than [`MAX_HELD`] are; past that, by path.)
    dirs: RwLock<HashMap<String, Arc<DirHandle>>>,
    recorder: Option<Mutex<BTreeMap<String, Entry>>>,
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

    /// Opens `path`: a directory is a captured tree (or `/`, which is live);
    /// a file must be a snapshot archive.
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
        let entries = read_archive(file).map_err(|reason| RootError::NotASnapshot {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Self::from_entries(path, entries))
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
            let entries = read_archive_from(io::Cursor::new(bytes), gzip)
                .map_err(|reason| RootError::NotASnapshot { path, reason })?;
            return Ok(Self::from_entries(Path::new("standard input"), entries));
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
            entries,
        })
    }

    fn with_backing(backing: Backing) -> Self {
        SystemRoot {
            backing,
            kinds: RwLock::new(HashMap::new()),
            dirs: RwLock::new(HashMap::new()),
            recorder: None,
            evidence: None,
        }
    }

    /// Starts recording every file, link and directory read through this root.
    pub fn record(mut self) -> Self {
        self.recorder = Some(Mutex::new(BTreeMap::new()));
        self
    }

    /// What was recorded (empty unless [`record`](Self::record) was called).
    pub fn recorded(&self) -> BTreeMap<String, Entry> {
        self.recorder
            .as_ref()
            .map(|r| r.lock().map(|m| m.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// True while recording for a snapshot.
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
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

    fn note(&self, path: &str, entry: Entry) {
        if let Some(rec) = &self.recorder
            && let Ok(mut map) = rec.lock()
        {
            map.insert(path.to_string(), entry);
        }
    }

    /// Keeps `bytes` at `path` in the snapshot being recorded (no effect
    /// otherwise): output of a read-only tool run during the scan, which
    /// no file on the machine holds. Analysing the snapshot later reads
    /// it back at the same path.
    pub fn note_generated(&self, path: &str, bytes: &[u8]) {
        self.note(path, Entry::File(bytes.to_vec()));
    }

    fn note_placeholder(&self, path: &str) {
        if let Some(rec) = &self.recorder
            && let Ok(mut map) = rec.lock()
        {
            map.entry(path.to_string())
                .or_insert_with(|| Entry::File(Vec::new()));
        }
    }

    /// Looks at one canonical path without following it.
    fn kind(&self, canonical: &str) -> io::Result<Option<Kind>> {
        if let Ok(cache) = self.kinds.read()
            && let Some(k) = cache.get(canonical)
        {
            return Ok(k.clone());
        }
        let kind = match &self.backing {
            Backing::Dir { base, .. } => match fs::symlink_metadata(base.join(canonical)) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(base.join(canonical))?;
                    Some(Kind::Symlink(target.to_string_lossy().into_owned()))
                }
                Ok(m) if m.is_dir() => Some(Kind::Dir),
                Ok(_) => Some(Kind::File),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => None,
                Err(e) => return Err(e),
            },
            Backing::Memory { entries, .. } => match entries.get(canonical) {
                Some(Entry::Dir) => Some(Kind::Dir),
                Some(Entry::File(_)) => Some(Kind::File),
                Some(Entry::Symlink(t)) => Some(Kind::Symlink(t.clone())),
                // Archives need not list parent directories explicitly.
                None if canonical.is_empty() || has_children(entries, canonical) => Some(Kind::Dir),
                None => None,
            },
        };
        // Only directories and links are worth remembering: they are the
        // shared prefixes of many paths. Files are looked at once.
        if matches!(kind, Some(Kind::Dir | Kind::Symlink(_)))
            && let Ok(mut cache) = self.kinds.write()
        {
            cache.insert(canonical.to_string(), kind.clone());
        }
        Ok(kind)
    }

    /// Resolves `path` to a canonical root-relative path with no symlinks.
    /// With `follow_last` false, a final symlink is left as it is.
    pub fn resolve(&self, path: &str, follow_last: bool) -> io::Result<String> {
        // `here` is the canonical path so far; `ends` remembers where each
        // component started, so `..` and a replaced symlink pop cheaply.
        let mut here = String::with_capacity(path.len() + 64);
        let mut ends: Vec<usize> = Vec::new();
        // Components still to walk, next last, as (text, start, end): text
        // 0 is `path`, text i the (i-1)th symlink target followed. Ranges
        // rather than Strings: a sysfs path has a dozen components.
        let mut targets: Vec<String> = Vec::new();
        let mut todo: Vec<(usize, usize, usize)> = Vec::new();
        push_components(&mut todo, 0, path);
        let pop = |here: &mut String, ends: &mut Vec<usize>| {
            if let Some(start) = ends.pop() {
                here.truncate(start);
            }
        };
        while let Some((text, start, end)) = todo.pop() {
            let component = match text {
                0 => &path[start..end],
                i => &targets[i - 1][start..end],
            };
            match component {
                "." => continue,
                ".." => {
                    pop(&mut here, &mut ends);
                    continue;
                }
                _ => {}
            }
            ends.push(here.len());
            if !here.is_empty() {
                here.push('/');
            }
            here.push_str(component);
            if todo.is_empty() && !follow_last {
                break;
            }
            match self.kind(&here)? {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{here}: no such file or directory"),
                    ));
                }
                Some(Kind::Symlink(target)) => {
                    if targets.len() >= MAX_SYMLINKS {
                        return Err(io::Error::other(format!("{path}: too many symbolic links")));
                    }
                    self.note(&here, Entry::Symlink(target.clone()));
                    pop(&mut here, &mut ends);
                    if target.starts_with('/') {
                        here.clear();
                        ends.clear();
                    }
                    targets.push(target);
                    push_components(&mut todo, targets.len(), &targets[targets.len() - 1]);
                }
                Some(Kind::File) if !todo.is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{here}: not a directory"),
                    ));
                }
                Some(Kind::Dir) if todo.is_empty() && self.recorder.is_some() => {
                    // A directory reached but perhaps never read from: keep
                    // it, so the path still resolves in a snapshot.
                    self.note(&here, Entry::Dir);
                }
                Some(_) => {}
            }
        }
        Ok(here)
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
                match read_nofollow(&base.join(&canonical)) {
                    Ok(bytes) => {
                        if self.recorder.is_some() {
                            self.note(&canonical, Entry::File(bytes.clone()));
                        }
                        return Ok(bytes);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let canonical = self.resolve(path, true)?;
        let bytes = match &self.backing {
            Backing::Dir { base, .. } => read_nofollow(&base.join(&canonical))?,
            Backing::Memory { entries, .. } => match entries.get(&canonical) {
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

    /// The directory at `path`, resolved (following a final symlink) and,
    /// where the root allows, held open for [`read_at`](Self::read_at) and
    /// friends.
    pub fn open_dir(&self, path: &str) -> io::Result<DirHandle> {
        if !self.holds_dirs() {
            return Ok(DirHandle {
                path: self.resolve(path, true)?,
                fd: None,
            });
        }
        // Everything but the last component resolves through the caches
        // (to a parent directory held open); the last one (a device's own
        // directory, seen once) is followed by `follow`.
        match self.split_last(path)? {
            Some((parent, name)) => self.follow(&parent, &name, || path.to_string()),
            None => Ok(DirHandle {
                path: String::new(),
                fd: None,
            }),
        }
    }

    /// [`open_dir`](Self::open_dir) of `name` in `dir`, looked up relative
    /// to `dir` (the functions listed in sys/bus/pci/devices).
    pub fn open_dir_in(&self, dir: &DirHandle, name: &str) -> io::Result<DirHandle> {
        if dir.fd.is_some() && is_name(name) {
            self.follow(dir, name, || join(&dir.path, name))
        } else {
            self.open_dir(&join(&dir.path, name))
        }
    }

    /// Follows `name` in `parent` to a directory: a link is read and its
    /// target resolved inside the root, a directory is opened without
    /// following, which both checks it and gives the handle. (`path` names
    /// it in a loop error.)
    fn follow(
        &self,
        parent: &DirHandle,
        name: &str,
        path: impl Fn() -> String,
    ) -> io::Result<DirHandle> {
        // Where a link led: its target's parent and last component.
        let mut next: Option<(Arc<DirHandle>, String)> = None;
        // A name listed in a bus or class directory is usually a link, and
        // what a link points at usually a directory: try that call first.
        let mut link_first = true;
        for _ in 0..=MAX_SYMLINKS {
            let (parent, name) = match &next {
                Some((p, n)) => (&**p, n.as_str()),
                None => (parent, name),
            };
            let here = || join(&parent.path, name);
            match self.last_component(parent, name, link_first)? {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{}: no such file or directory", here()),
                    ));
                }
                Some(Last::Dir(fd)) => {
                    return Ok(DirHandle {
                        path: here(),
                        fd: Some(fd),
                    });
                }
                Some(Last::Other) => {
                    return Ok(DirHandle {
                        path: here(),
                        fd: None,
                    });
                }
                Some(Last::Link(target)) => {
                    let target = if target.starts_with('/') {
                        target
                    } else {
                        join(&parent.path, &target)
                    };
                    let Some(found) = self.split_last(&target)? else {
                        return Ok(DirHandle {
                            path: String::new(),
                            fd: None,
                        });
                    };
                    next = Some(found);
                    link_first = false;
                }
            }
        }
        Err(io::Error::other(format!(
            "{}: too many symbolic links",
            path()
        )))
    }

    /// Reads `name` in the directory `sub` of the directory `dir` as
    /// trimmed text, for a `sub` seen once (an IOMMU group's): the file is
    /// opened relative to `dir` held open, with `sub` checked not to be a
    /// link (by openat2 itself where the kernel has it, else by readlinkat
    /// first), instead of `sub` being stat'ed into the cache and the file
    /// opened by its full path. A link there is followed inside the root.
    pub fn read_string_below(&self, dir: &str, sub: &str, name: &str) -> io::Result<String> {
        self.read_below(dir, sub, name).map(|b| trimmed_text(&b))
    }

    fn read_below(&self, dir: &str, sub: &str, name: &str) -> io::Result<Vec<u8>> {
        let path = || join(&join(dir, sub), name);
        if !self.holds_dirs() || !is_name(sub) || !is_name(name) {
            return self.read(&path());
        }
        let parent = self.parent(dir)?;
        let Some(fd) = &parent.fd else {
            return self.read(&path());
        };
        // One call where the kernel has openat2: it refuses a link on the
        // way (then, and on any failure, the steps below decide).
        if let Ok(f) = at::open_without_links(fd.as_fd(), &join(sub, name)) {
            return read_file(f.into());
        }
        match at::readlink(fd.as_fd(), sub) {
            // There, and not a link.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no such file or directory", join(&parent.path, sub)),
                ));
            }
            // A link (followed inside the root), or an odd error.
            _ => return self.read(&path()),
        }
        match at::open(fd.as_fd(), &join(sub, name), libc::O_RDONLY) {
            Ok(f) => read_file(f.into()),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => self.read(&path()),
            Err(e) => Err(e),
        }
    }

    /// Whether directories may be held open (a directory root, not
    /// recording: recording needs every step seen by `resolve`).
    fn holds_dirs(&self) -> bool {
        matches!(self.backing, Backing::Dir { .. }) && self.recorder.is_none()
    }

    /// The resolved directory `dir`, from the cache or resolved now and
    /// opened (O_PATH) while fewer than [`MAX_HELD`] are.
    fn parent(&self, dir: &str) -> io::Result<Arc<DirHandle>> {
        if let Some(p) = self.dirs.read().ok().and_then(|m| m.get(dir).cloned()) {
            return Ok(p);
        }
        let path = self.resolve(dir, true)?;
        let room = self.dirs.read().is_ok_and(|m| m.len() < MAX_HELD);
        let fd = match &self.backing {
            Backing::Dir { base, .. } if room => open_path_dir(&base.join(&path)).ok(),
            _ => None,
        };
        let parent = Arc::new(DirHandle { path, fd });
        Ok(match self.dirs.write() {
            Ok(mut m) => m.entry(dir.to_string()).or_insert(parent).clone(),
            Err(_) => parent,
        })
    }

    /// `path` as its parent directory (resolved, perhaps held) and last
    /// component, not followed; None for the root itself.
    fn split_last(&self, path: &str) -> io::Result<Option<(Arc<DirHandle>, String)>> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if is_name(name) {
            return Ok(Some((self.parent(dir)?, name.to_string())));
        }
        // It ends in `.` or `..`: resolve it all, then split that.
        let canonical = self.resolve(path, true)?;
        if canonical.is_empty() {
            return Ok(None);
        }
        let (dir, name) = canonical.rsplit_once('/').unwrap_or(("", &canonical));
        Ok(Some((self.parent(dir)?, name.to_string())))
    }

    /// What `name` in `parent` is, for `open_dir`: a directory (opened, not
    /// followed), a symlink (read), something else, or nothing (None).
    /// `link_first` picks the call tried first; the other follows only
    /// when the first says "not so".
    fn last_component(
        &self,
        parent: &DirHandle,
        name: &str,
        link_first: bool,
    ) -> io::Result<Option<Last>> {
        let Backing::Dir { base, .. } = &self.backing else {
            return Ok(None);
        };
        let as_link = || {
            match &parent.fd {
                Some(fd) => at::readlink(fd.as_fd(), name),
                None => fs::read_link(base.join(join(&parent.path, name)))
                    .map(|t| t.to_string_lossy().into_owned()),
            }
            .map(Last::Link)
        };
        let as_dir = || {
            match &parent.fd {
                Some(fd) => at::open(fd.as_fd(), name, DIR_NOFOLLOW),
                None => open_path_dir(&base.join(join(&parent.path, name))),
            }
            .map(Last::Dir)
        };
        let errno = |e: &io::Error| e.raw_os_error().unwrap_or(0);
        let found = if link_first {
            match as_link() {
                // There, and not a link.
                Err(e) if errno(&e) == libc::EINVAL => match as_dir() {
                    Err(e) if errno(&e) == libc::ENOTDIR => Ok(Last::Other),
                    r => r,
                },
                r => r,
            }
        } else {
            match as_dir() {
                // A link (O_NOFOLLOW) or a file.
                Err(e) if errno(&e) == libc::ENOTDIR => match as_link() {
                    Err(e) if errno(&e) == libc::EINVAL => Ok(Last::Other),
                    r => r,
                },
                r => r,
            }
        };
        match found {
            Ok(last) => Ok(Some(last)),
            Err(e) if matches!(errno(&e), libc::ENOENT | libc::ENOTDIR) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads `name` in a directory from [`open_dir`](Self::open_dir): the
    /// hot path of a scan, which reads a dozen attributes per device.
    pub fn read_at(&self, dir: &DirHandle, name: &str) -> io::Result<Vec<u8>> {
        match &dir.fd {
            Some(fd) if is_name(name) => {
                match at::open(fd.as_fd(), name, libc::O_RDONLY).and_then(|f| read_file(f.into())) {
                    // A held directory means no recorder: nothing to note.
                    Ok(bytes) => Ok(bytes),
                    // A symlink: follow it inside the root.
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                        self.read(&join(&dir.path, name))
                    }
                    Err(e) => Err(e),
                }
            }
            _ => self.read(&join(&dir.path, name)),
        }
    }

    /// Whether `name` exists in a directory from
    /// [`open_dir`](Self::open_dir) (following a symlink there).
    pub fn exists_at(&self, dir: &DirHandle, name: &str) -> bool {
        match &dir.fd {
            // readlink answers "absent", "there and not a link" or "a link"
            // in one call, without filling in a stat buffer.
            Some(fd) if is_name(name) => match at::readlink(fd.as_fd(), name) {
                Ok(_) => self.exists(&join(&dir.path, name)),
                Err(e) => e.raw_os_error() == Some(libc::EINVAL),
            },
            _ => self.exists(&join(&dir.path, name)),
        }
    }

    /// [`read_at`](Self::read_at) as trimmed text.
    pub fn read_string_at(&self, dir: &DirHandle, name: &str) -> io::Result<String> {
        let bytes = self.read_at(dir, name)?;
        Ok(trimmed_text(&bytes))
    }

    /// The last component of the target of the symlink `name` in a
    /// directory from [`open_dir`](Self::open_dir) (`driver` → `nvme`).
    pub fn link_name_at(&self, dir: &DirHandle, name: &str) -> Option<String> {
        let target = match &dir.fd {
            Some(fd) if is_name(name) => at::readlink(fd.as_fd(), name).ok()?,
            _ => self.read_link(&join(&dir.path, name)).ok()?,
        };
        split(&target).next_back().map(str::to_string)
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
        let canonical = self.resolve(path, true)?;
        let mut names: Vec<String> = match &self.backing {
            Backing::Dir { base, .. } => fs::read_dir(base.join(&canonical))?
                .filter_map(|e| e.ok())
                .map(|e| {
                    e.file_name()
                        .into_string()
                        .unwrap_or_else(|n| n.to_string_lossy().into_owned())
                })
                .collect(),
            Backing::Memory { entries, .. } => {
                if !matches!(self.kind(&canonical)?, Some(Kind::Dir)) {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{canonical}: not a directory"),
                    ));
                }
                children(entries, &canonical)
            }
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

/// Flags that open a directory as a handle to look names up in, and fail
/// on a symlink (with ENOTDIR) instead of following it.
const DIR_NOFOLLOW: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;

fn open_path_dir(path: &Path) -> io::Result<OwnedFd> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(DIR_NOFOLLOW)
        .open(path)
        .map(OwnedFd::from)
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

/// Reads a whole file, refusing to follow a symlink in its last component
/// (the path is already resolved; this keeps it so should the tree change).
fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    read_file(f)
}

/// Reads an open file to its end.
fn read_file(mut f: fs::File) -> io::Result<Vec<u8>> {
    // sysfs files report a size of 4096 whatever they hold, so no size
    // hint (which would cost a statx and an lseek per file). A read from a
    // regular file or a sysfs attribute comes back short only at the end,
    // so one short read saves the second read that would find EOF: on a
    // 4096-function server that is thousands of system calls.
    const FIRST: usize = 4096 + 1;
    thread_local! {
        // Reused, so each read does not clear 4 KiB first.
        static FIRST_READ: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; FIRST]);
    }
    let mut buf = FIRST_READ.with_borrow_mut(|first| {
        loop {
            match f.read(first) {
                Ok(n) => break Ok(first[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        }
    })?;
    if buf.len() == FIRST {
        f.take(u64::MAX).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// `openat`, `openat2` and `readlinkat` relative to a directory held open,
/// which std does not offer. Callers pass one path component (`is_name`),
/// or `sub/name` where `sub` was checked not to be a link (or, for
/// openat2, is refused if it is one): the kernel looks up only that, and
/// never follows a symlink in the last component.
mod at {
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    /// Calls `f` with `name` NUL-terminated (on the stack when short).
    fn with_c_name<T>(name: &str, f: impl FnOnce(&CStr) -> io::Result<T>) -> io::Result<T> {
        let bytes = name.as_bytes();
        let mut buf = [0u8; 256];
        if bytes.len() >= buf.len() {
            let owned =
                CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            return f(&owned);
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        let c = CStr::from_bytes_with_nul(&buf[..=bytes.len()])
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        f(c)
    }

    /// Opens `name` in `dir` with `flags` and O_NOFOLLOW: a symlink there
    /// fails (ELOOP, or ENOTDIR with O_DIRECTORY).
    pub fn open(dir: BorrowedFd<'_>, name: &str, flags: libc::c_int) -> io::Result<OwnedFd> {
        with_c_name(name, |name| {
            // SAFETY: `name` is a NUL-terminated string that outlives the
            // call; openat returns a new descriptor or -1.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just opened, and nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })
    }

    /// Opens `path` below `dir` read-only if no component of it is a
    /// symlink (openat2 with RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH). Fails
    /// with ENOSYS, without a system call, once the kernel (or a seccomp
    /// filter) has refused openat2.
    pub fn open_without_links(dir: BorrowedFd<'_>, path: &str) -> io::Result<OwnedFd> {
        use std::sync::atomic::{AtomicBool, Ordering};
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        /// struct open_how (linux/openat2.h); libc's is non_exhaustive.
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let how = OpenHow {
            flags: (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH,
        };
        let result = with_c_name(path, |path| {
            // SAFETY: `path` is NUL-terminated and `how` is a struct
            // open_how of the size passed; both outlive the call, which
            // returns a new descriptor or -1.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dir.as_raw_fd(),
                    path.as_ptr(),
                    &how as *const OpenHow,
                    std::mem::size_of::<OpenHow>(),
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just opened, and nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
        });
        if let Err(e) = &result
            && matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL)
            )
        {
            // Too old a kernel, or a sandbox that forbids the call.
            UNSUPPORTED.store(true, Ordering::Relaxed);
        }
        result
    }

    /// The target of the symlink `name` in `dir` (EINVAL: not a link).
    pub fn readlink(dir: BorrowedFd<'_>, name: &str) -> io::Result<String> {
        with_c_name(name, |name| {
            // sysfs targets are short; a longer one is read again in full.
            let mut short = [0u8; 256];
            let n = readlinkat(dir, name, &mut short)?;
            if n < short.len() {
                return Ok(String::from_utf8_lossy(&short[..n]).into_owned());
            }
            let mut long = vec![0u8; libc::PATH_MAX as usize];
            let n = readlinkat(dir, name, &mut long)?;
            if n == long.len() {
                // Cut short: no target is PATH_MAX long.
                return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
            }
            Ok(String::from_utf8_lossy(&long[..n]).into_owned())
        })
    }

    fn readlinkat(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its whole length and `name` is a
        // NUL-terminated string; both outlive the call.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
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

/// Queues the components of `path` (read from text `text`) on `todo` as
/// byte ranges, the first component last (it is popped first).
fn push_components(todo: &mut Vec<(usize, usize, usize)>, text: usize, path: &str) {
    let first = todo.len();
    let mut start = 0;
    for part in path.split('/') {
        if !part.is_empty() {
            todo.push((text, start, start + part.len()));
        }
        start += part.len() + 1;
    }
    todo[first..].reverse();
}

fn split(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

fn has_children(entries: &BTreeMap<String, Entry>, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    entries
        .range(prefix.clone()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
}

fn children(entries: &BTreeMap<String, Entry>, dir: &str) -> Vec<String> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut names: Vec<String> = entries
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter_map(|(k, _)| k[prefix.len()..].split('/').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    names.dedup();
    names
}

/// Normalises an archive member name: no leading `/` or `./`, and no `..`.
fn archive_name(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Loads a gzip (or plain) tar archive into memory.
fn read_archive(mut file: fs::File) -> Result<BTreeMap<String, Entry>, String> {
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let file = {
        use std::io::Seek;
        let mut f = file;
        f.seek(io::SeekFrom::Start(0))
            .map_err(|e| format!("cannot read it: {e}"))?;
        f
    };
    let gzip = magic == [0x1f, 0x8b];
    if !gzip {
        // A plain tar carries "ustar" at offset 257.
        let mut head = [0u8; 263];
        let n = (&file).read(&mut head).unwrap_or(0);
        use std::io::Seek;
        let _ = (&file).seek(io::SeekFrom::Start(0));
        if n < 262 || &head[257..262] != b"ustar" {
            return Err("it is not a gzip or tar file".to_string());
        }
    }
    read_archive_from(file, gzip)
}

/// The entries of a (gzipped) tar stream, bounded.
fn read_archive_from(file: impl Read, gzip: bool) -> Result<BTreeMap<String, Entry>, String> {
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader.take(MAX_ARCHIVE_BYTES));
    let mut entries = BTreeMap::new();
    let iter = archive
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for item in iter {
        let mut item = item.map_err(|e| format!("damaged archive: {e}"))?;
        if entries.len() >= MAX_ARCHIVE_ENTRIES {
            return Err(format!("more than {MAX_ARCHIVE_ENTRIES} entries"));
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
        } else if kind.is_file() {
            let mut buf = Vec::new();
            item.read_to_end(&mut buf)
                .map_err(|e| format!("damaged member `{raw}`: {e}"))?;
            Entry::File(buf)
        } else {
            continue;
        };
        if !name.is_empty() {
            entries.insert(name, entry);
        }
    }
    if entries.is_empty() {
        return Err("it holds no files".to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(entries: &[(&str, Entry)]) -> SystemRoot {
        let map = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        SystemRoot::from_entries(Path::new("test"), map)
    }

    fn file(s: &str) -> Entry {
        Entry::File(s.as_bytes().to_vec())
    }

    fn link(s: &str) -> Entry {
        Entry::Symlink(s.to_string())
    }

    #[test]
    fn follows_relative_links_like_sysfs() {
        let r = mem(&[
            (
                "sys/bus/pci/devices/0000:01:00.0",
                link("../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0"),
            ),
            (
                "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/vendor",
                file("0x8086\n"),
            ),
        ]);
        assert_eq!(
            r.resolve("sys/bus/pci/devices/0000:01:00.0", true).unwrap(),
            "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"
        );
        assert_eq!(
            r.read_string("sys/bus/pci/devices/0000:01:00.0/vendor")
                .unwrap(),
            "0x8086"
        );
        assert_eq!(
            r.read_dir("sys/bus/pci/devices").unwrap(),
            vec!["0000:01:00.0".to_string()]
        );
    }

    #[test]
    fn absolute_and_escaping_links_stay_inside() {
        let r = mem(&[
            ("etc/passwd", file("inside")),
            ("sys/a", link("/etc/passwd")),
            ("sys/b", link("../../../../../../etc/passwd")),
        ]);
        assert_eq!(r.read_string("sys/a").unwrap(), "inside");
        assert_eq!(r.read_string("sys/b").unwrap(), "inside");
    }

    #[test]
    fn dangling_and_looping_links_are_errors_not_panics() {
        let r = mem(&[
            ("a", link("b")),
            ("b", link("a")),
            ("c", link("nowhere")),
            ("f", file("x")),
        ]);
        assert!(r.read("a").is_err());
        assert!(r.read("c").is_err());
        assert!(r.read("f/under-a-file").is_err());
        assert!(!r.exists("c"));
    }

    #[test]
    fn directory_root_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "secret").unwrap();
        fs::create_dir_all(dir.path().join("sys")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("sys/abs"))
            .unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../../../../../etc/hostname",
            dir.path().join("sys/rel"),
        )
        .unwrap();
        let r = SystemRoot::open(dir.path()).unwrap();
        assert!(!r.is_live());
        assert!(
            r.read("sys/abs").is_err(),
            "absolute link must be re-rooted"
        );
        assert!(
            r.read("sys/rel").is_err(),
            "relative escape must stop at the root"
        );
    }

    #[test]
    fn open_dir_follows_links_inside_the_root() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "secret").unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("sys/devices/real")).unwrap();
        fs::create_dir_all(d.join("sys/bus")).unwrap();
        fs::write(d.join("sys/devices/real/config"), "cfg").unwrap();
        symlink(outside.path(), d.join("sys/devices/away")).unwrap();
        symlink(
            outside.path().join("secret"),
            d.join("sys/devices/real/bad"),
        )
        .unwrap();
        symlink("config", d.join("sys/devices/real/alias")).unwrap();
        symlink("../devices/real", d.join("sys/bus/x")).unwrap();
        symlink("/sys/devices/real", d.join("sys/devices/hop")).unwrap();
        symlink("../devices/hop", d.join("sys/bus/two")).unwrap();
        symlink("../devices/away", d.join("sys/bus/esc")).unwrap();
        symlink("../devices/real/config", d.join("sys/bus/file")).unwrap();
        symlink("loop", d.join("sys/bus/loop")).unwrap();
        let r = SystemRoot::open(d).unwrap();

        for link in ["sys/bus/x", "sys/bus/two", "sys/devices/real"] {
            let h = r.open_dir(link).unwrap();
            assert_eq!(h.path(), "sys/devices/real", "{link}");
            assert_eq!(r.read_string_at(&h, "config").unwrap(), "cfg");
            assert_eq!(r.read_string_at(&h, "alias").unwrap(), "cfg");
            assert!(r.exists_at(&h, "config") && r.exists_at(&h, "alias"));
            assert!(!r.exists_at(&h, "missing"));
            assert!(r.read_at(&h, "bad").is_err(), "absolute link re-rooted");
            assert!(!r.exists_at(&h, "bad"));
            assert_eq!(r.link_name_at(&h, "alias").as_deref(), Some("config"));
            assert_eq!(r.link_name_at(&h, "config"), None);
        }
        let bus = r.open_dir("sys/bus").unwrap();
        for name in ["x", "two"] {
            let h = r.open_dir_in(&bus, name).unwrap();
            assert_eq!(h.path(), "sys/devices/real", "{name}");
            assert_eq!(r.read_string_at(&h, "config").unwrap(), "cfg");
        }
        for name in ["esc", "loop", "none"] {
            assert!(r.open_dir_in(&bus, name).is_err(), "{name}");
        }
        // A directory link leading out of the root is re-rooted: nothing.
        assert!(r.open_dir("sys/bus/esc").is_err());
        assert!(r.open_dir("sys/bus/loop").is_err());
        assert!(r.open_dir("sys/bus/none").is_err());
        // A link to a file resolves, but nothing can be read below it.
        let h = r.open_dir("sys/bus/file").unwrap();
        assert_eq!(h.path(), "sys/devices/real/config");
        assert!(r.read_at(&h, "config").is_err());
    }

    #[test]
    fn read_below_checks_the_middle_directory() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(outside.path().join("7")).unwrap();
        fs::write(outside.path().join("7/type"), "outside").unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("sys/kernel/iommu_groups/1")).unwrap();
        fs::create_dir_all(d.join("sys/kernel/real/4")).unwrap();
        fs::write(d.join("sys/kernel/iommu_groups/1/type"), "DMA\n").unwrap();
        fs::write(d.join("sys/kernel/real/4/type"), "identity\n").unwrap();
        symlink("../real/4", d.join("sys/kernel/iommu_groups/4")).unwrap();
        symlink(
            outside.path().join("7"),
            d.join("sys/kernel/iommu_groups/7"),
        )
        .unwrap();
        symlink(
            outside.path().join("7/type"),
            d.join("sys/kernel/iommu_groups/1/link"),
        )
        .unwrap();
        let r = SystemRoot::open(d).unwrap();
        let groups = "sys/kernel/iommu_groups";
        assert_eq!(r.read_string_below(groups, "1", "type").unwrap(), "DMA");
        assert_eq!(
            r.read_string_below(groups, "4", "type").unwrap(),
            "identity"
        );
        assert!(
            r.read_string_below(groups, "7", "type").is_err(),
            "re-rooted"
        );
        assert!(
            r.read_string_below(groups, "1", "link").is_err(),
            "re-rooted"
        );
        assert!(r.read_string_below(groups, "9", "type").is_err());
        assert!(r.read_string_below(groups, "1", "none").is_err());
        assert!(
            r.read_string_below(groups, "..", "iommu_groups/1/type")
                .is_ok()
        );
    }

    #[test]
    fn recording_keeps_links_and_files_read() {
        let r = mem(&[
            ("sys/bus/pci/devices/x", link("../../../devices/x")),
            ("sys/devices/x/config", file("abc")),
            ("sys/devices/x/other", file("unread")),
        ])
        .record();
        r.read_dir("sys/bus/pci/devices").unwrap();
        r.read("sys/bus/pci/devices/x/config").unwrap();
        let rec = r.recorded();
        assert_eq!(
            rec.get("sys/bus/pci/devices/x"),
            Some(&link("../../../devices/x"))
        );
        assert_eq!(rec.get("sys/devices/x/config"), Some(&file("abc")));
        assert!(!rec.contains_key("sys/devices/x/other"));
    }

    #[test]
    fn archive_names_reject_climbing() {
        assert_eq!(archive_name("./sys/x").as_deref(), Some("sys/x"));
        assert_eq!(archive_name("/sys/x").as_deref(), Some("sys/x"));
        assert_eq!(archive_name("sys/../../x"), None);
    }
}
