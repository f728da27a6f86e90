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
/// cannot exhaust memory: the tar stream after decompression, the file
/// contents kept, and the members.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
const MAX_ARCHIVE_KEPT: u64 = 256 << 20;
const MAX_ARCHIVE_ENTRIES: usize = 1_000_000;

/// PCI config space: 256 bytes, 4096 with PCIe extended config space; the
/// kernel's `config` file never holds more.
pub const MAX_CONFIG: u64 = 4096;
/// A sysfs attribute: its show() fills at most one page, and the largest
/// page Linux runs with is 64 KiB (arm64, ppc64). (Binary attributes that
/// are larger, the BARs' `resourceN`, are never read.)
pub const MAX_SYSFS_ATTRIBUTE: u64 = 64 << 10;
/// /proc/sys/kernel/{hostname,osrelease}: a line each.
const MAX_PROC_SYS: u64 = 4096;
/// /proc/cmdline: COMMAND_LINE_SIZE is 2048 on x86 and at most a few KiB
/// elsewhere; 64 KiB is far above any.
const MAX_CMDLINE: u64 = 64 << 10;
/// /proc/cpuinfo: about 1.5 KiB per CPU on x86, so 8192 CPUs fit.
const MAX_CPUINFO: u64 = 16 << 20;
/// A kernel config (/boot/config-*: ~300 KiB; /proc/config.gz compressed
/// ~60 KiB) and the kernel log of a capture (the largest log buffer the
/// kernel allows is 32 MiB).
const MAX_KERNEL_CONFIG: u64 = 4 << 20;
const MAX_KERNEL_LOG: u64 = 32 << 20;
/// Anything else read through a root.
const MAX_OTHER: u64 = 16 << 20;
/// The IOMMU driver's debugfs tables (dmar_translation_struct).
const MAX_DEBUGFS_TABLE: u64 = 4 << 20;

/// The most bytes the file at the root-relative `path` may hold, by what
/// it is (see the constants above). A file larger than that is not what
/// the kernel makes, and is refused rather than read.
pub fn read_limit(path: &str) -> u64 {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.starts_with("sys/kernel/debug/iommu/") {
        // One line per device (and per PASID): more than an attribute.
        return MAX_DEBUGFS_TABLE;
    }
    if path.starts_with("sys/") {
        return if name == "config" {
            MAX_CONFIG
        } else {
            MAX_SYSFS_ATTRIBUTE
        };
    }
    match path {
        "proc/cmdline" => MAX_CMDLINE,
        "proc/cpuinfo" => MAX_CPUINFO,
        "proc/config.gz" => MAX_KERNEL_CONFIG,
        KERNEL_LOG_FILE => MAX_KERNEL_LOG,
        p if p.starts_with("proc/sys/") => MAX_PROC_SYS,
        p if p.starts_with("boot/config-") => MAX_KERNEL_CONFIG,
        _ => MAX_OTHER,
    }
}

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
                    // Regular files only, links not followed: a hostile
                    // directory cannot make us read outside it.
                    .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()))
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
        if fs::symlink_metadata(dir.join(rel)).is_ok_and(|m| m.file_type().is_file()) {
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
    Memory { source: PathBuf, tree: MemTree },
}

/// An in-memory tree, as nodes linked by name, so that a lookup costs a
/// step per component however long the path: a hostile snapshot nests
/// thousands of bridges, and keying by whole paths made every step hash
/// (or compare) the whole path so far, cubic in the depth.
#[derive(Debug)]
struct MemTree {
    nodes: Vec<MemNode>,
}

#[derive(Debug)]
struct MemNode {
    entry: Entry,
    /// Children by name, in the order they came; searched in turn while
    /// few (a sysfs directory along a chain of bridges has a handful).
    children: Vec<(Box<str>, u32)>,
    /// The same, hashed, once there are more than [`SCAN_CHILDREN`].
    index: Option<HashMap<Box<str>, u32>>,
}

const SCAN_CHILDREN: usize = 16;

impl MemTree {
    const ROOT: u32 = 0;

    /// Builds the tree. Paths come sorted, so each shares its leading
    /// components with the one before: only the rest is looked up. Parent
    /// directories need not be listed (archives often omit them).
    fn new(entries: BTreeMap<String, Entry>) -> MemTree {
        let mut tree = MemTree {
            nodes: vec![MemNode::new(Entry::Dir)],
        };
        // The previous path, its components' byte ranges and their nodes.
        let mut prev = String::new();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut stack: Vec<u32> = Vec::new();
        for (key, entry) in entries {
            // The components wholly inside the bytes shared with the
            // previous path are its components too: keep their nodes.
            let kb = key.as_bytes();
            let lcp = common_prefix(prev.as_bytes(), kb);
            let mut keep = ranges.partition_point(|&(_, end)| end < lcp);
            if keep < ranges.len() && ranges[keep].1 == lcp && (lcp == kb.len() || kb[lcp] == b'/')
            {
                keep += 1;
            }
            ranges.truncate(keep);
            stack.truncate(keep);
            let mut at = ranges.last().map_or(0, |r| r.1);
            for part in key[at..].split('/') {
                if !part.is_empty() {
                    let parent = stack.last().copied().unwrap_or(Self::ROOT);
                    stack.push(tree.child_or_insert(parent, part));
                    ranges.push((at, at + part.len()));
                }
                at += part.len() + 1;
            }
            if let Some(&id) = stack.last() {
                tree.nodes[id as usize].entry = entry;
            }
            prev = key;
        }
        tree
    }

    fn node(&self, id: u32) -> &MemNode {
        &self.nodes[id as usize]
    }

    fn child(&self, id: u32, name: &str) -> Option<u32> {
        let n = self.node(id);
        match &n.index {
            Some(index) => index.get(name).copied(),
            None => n
                .children
                .iter()
                .find(|(c, _)| &**c == name)
                .map(|&(_, id)| id),
        }
    }

    fn child_or_insert(&mut self, id: u32, name: &str) -> u32 {
        if let Some(c) = self.child(id, name) {
            return c;
        }
        let new = self.nodes.len() as u32;
        self.nodes.push(MemNode::new(Entry::Dir));
        let n = &mut self.nodes[id as usize];
        n.children.push((name.into(), new));
        match &mut n.index {
            Some(index) => {
                index.insert(name.into(), new);
            }
            None if n.children.len() > SCAN_CHILDREN => {
                n.index = Some(n.children.iter().cloned().collect());
            }
            None => {}
        }
        new
    }

    /// The node at a canonical path (no symlink followed).
    fn lookup(&self, canonical: &str) -> Option<u32> {
        split(canonical).try_fold(Self::ROOT, |id, c| self.child(id, c))
    }

    fn kind(&self, id: u32) -> Kind {
        match &self.node(id).entry {
            Entry::Dir => Kind::Dir,
            Entry::File(_) => Kind::File,
            Entry::Symlink(t) => Kind::Symlink(t.clone()),
        }
    }

    fn names(&self, id: u32) -> Vec<String> {
        self.node(id)
            .children
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }
}

impl MemNode {
    fn new(entry: Entry) -> MemNode {
        MemNode {
            entry,
            children: Vec::new(),
            index: None,
        }
    }
}

/// A directory resolved once to read several entries of (a device's sysfs
/// directory). On a directory root that is not recording it is also held
/// open, so each read is a one-component lookup relative to it rather than
/// a walk of the whole path.
#[derive(Debug)]
pub struct DirHandle {
    path: String,
    fd: Option<OwnedFd>,
    /// The directory's node in an in-memory tree (not recording).
    node: Option<u32>,
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
    /// Files refused (not regular, too large) and archive members skipped,
    /// each said once: the scan turns them into notes.
    notes: Mutex<Vec<String>>,
    /// Tells this root's cursor (see `cursor_skip`) from another's.
    id: u64,
    /// lspci output, a paste or an hwloc export given as the root (the
    /// backing is then an empty in-memory tree).
    evidence: Option<String>,
}

thread_local! {
    /// The last deep path this thread resolved in memory, and the root's
    /// id (see `cursor_skip`). Per thread: a scan's threads each take a
    /// batch of neighbouring devices.
    static CURSOR: std::cell::RefCell<Option<(u64, Cursor)>> = const { std::cell::RefCell::new(None) };
}

/// A canonical path resolved in an in-memory tree, with where each
/// component starts and its node: the devices of a deep tree are resolved
/// one after another, each path the one before plus a component, so the
/// next resolution takes the shared part from here.
#[derive(Debug)]
struct Cursor {
    here: String,
    ends: Vec<usize>,
    nodes: Vec<u32>,
}

/// Paths at least this deep are kept as the cursor.
const CURSOR_DEPTH: usize = 16;

/// What `cursor_skip` took: the state after the shared components, and the
/// bytes of the text they span.
struct Skip {
    here: String,
    ends: Vec<usize>,
    nodes: Vec<u32>,
    used: usize,
}

/// How many components of the cursor `cur` the walk from `here` (with
/// `depth` components) through `rest` shares: (components, their end in
/// the cursor's path, bytes of `rest` they span); None if not beyond
/// `here`. Only whole components that are directories are taken.
fn cursor_match(
    cur: &Cursor,
    tree: &MemTree,
    here: &str,
    depth: usize,
    rest: &str,
) -> Option<(usize, usize, usize)> {
    if cur.ends.len() <= depth + 1 {
        return None;
    }
    // `here` must be the cursor's first `depth` components.
    let here_end = cur.ends[depth];
    if here_end != here.len() || cur.here.as_bytes()[..here_end] != *here.as_bytes() {
        return None;
    }
    // Compare the rest with the cursor beyond `here` at memcmp speed, then
    // back off to a component boundary in both.
    let sep = usize::from(depth > 0);
    let theirs = cur.here.get(here_end + sep..)?.as_bytes();
    let ours = rest.as_bytes();
    let mut same = common_prefix(theirs, ours);
    let boundary =
        |n: usize| (n == ours.len() || ours[n] == b'/') && (n == theirs.len() || theirs[n] == b'/');
    while same > 0 && !boundary(same) {
        same -= 1;
    }
    if same == 0 {
        return None;
    }
    // What is taken equals the cursor's canonical path: no `.`, `..` or
    // empty components in it. The components covered are those that start
    // before its end; each must be a directory (the next is looked up
    // below it), so the last is left to the walk unless it is one.
    let end_abs = here_end + sep + same;
    let mut m = cur.ends.partition_point(|&e| e < end_abs);
    while m > depth && tree.kind(cur.nodes[m - 1]) != Kind::Dir {
        m -= 1;
    }
    if m <= depth {
        return None;
    }
    let new_end = cur.ends.get(m).copied().unwrap_or(cur.here.len());
    Some((m, new_end, new_end - (here_end + sep)))
}

/// The length of the common prefix of two byte strings, a block at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Why a file was not read though it is there: not a regular file, or
/// larger than such a file can be. (The path is added by the root.)
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Refused(why))
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

    /// Turns a refusal from [`read_file`] into an error naming `path`, and
    /// notes it; other errors pass as they are.
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
        if let Backing::Memory { tree, .. } = &self.backing {
            return Ok(tree.lookup(canonical).map(|id| tree.kind(id)));
        }
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
            Backing::Memory { tree, .. } => tree.lookup(canonical).map(|id| tree.kind(id)),
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
        self.resolve_in(path, follow_last).map(|(here, _)| here)
    }

    /// [`resolve`](Self::resolve), and in an in-memory tree the node it
    /// leads to (None for a last component not followed).
    fn resolve_in(&self, path: &str, follow_last: bool) -> io::Result<(String, Option<u32>)> {
        let tree = match &self.backing {
            Backing::Memory { tree, .. } => Some(tree),
            Backing::Dir { .. } => None,
        };
        // `here` is the canonical path so far; `ends` remembers where each
        // component started, so `..` and a replaced symlink pop cheaply;
        // `nodes` (in memory) the node of each component, beside `ends`.
        let mut here = String::with_capacity(path.len() + 64);
        let mut ends: Vec<usize> = Vec::new();
        let mut nodes: Vec<u32> = Vec::new();
        // Texts still to walk, the next on top, each as (text, offset of
        // what is left): text 0 is `path`, text i the (i-1)th symlink
        // target followed. Components are taken from a text as they come,
        // so a long target the cursor lets us skip is never split whole.
        let mut targets: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        let mut todo: Vec<(usize, usize)> = vec![(0, 0)];
        // The texts the cursor was tried on (once each).
        let mut tried: Vec<bool> = vec![false];
        let pop = |here: &mut String, ends: &mut Vec<usize>, nodes: &mut Vec<u32>| {
            if let Some(start) = ends.pop() {
                here.truncate(start);
                nodes.truncate(ends.len());
            }
        };
        while let Some(&(t, pos)) = todo.last() {
            let text: &str = match t {
                0 => path,
                i => &targets[i - 1],
            };
            let rest = text[pos..].trim_start_matches('/');
            if rest.is_empty() {
                todo.pop();
                continue;
            }
            let start = text.len() - rest.len();
            // In memory, a long plain run of components (a link into a deep
            // tree) is matched against the last deep path resolved, so that
            // the shared part costs a comparison, not a step per component.
            if let Some(tree) = tree
                && !tried[t]
                && self.recorder.is_none()
                && !rest.starts_with("./")
                && !rest.starts_with("../")
                && !matches!(rest, "." | "..")
            {
                tried[t] = true;
                if let Some(skip) = self.cursor_skip(tree, &here, ends.len(), rest) {
                    here = skip.here;
                    ends = skip.ends;
                    nodes = skip.nodes;
                    todo.last_mut().expect("on the stack").1 = start + skip.used;
                    continue;
                }
            }
            let len = rest.find('/').unwrap_or(rest.len());
            let component_range = start..start + len;
            todo.last_mut().expect("on the stack").1 = start + len;
            // Is anything left after this component, in any text?
            let last = {
                let left = |(t, pos): (usize, usize)| {
                    let s: &str = match t {
                        0 => path,
                        i => &targets[i - 1],
                    };
                    s[pos..].bytes().any(|b| b != b'/')
                };
                !todo.iter().rev().any(|&e| left(e))
            };
            let component = match t {
                0 => &path[component_range],
                i => &targets[i - 1][component_range],
            };
            match component {
                "." => continue,
                ".." => {
                    pop(&mut here, &mut ends, &mut nodes);
                    continue;
                }
                _ => {}
            }
            ends.push(here.len());
            if !here.is_empty() {
                here.push('/');
            }
            here.push_str(component);
            if last && !follow_last {
                break;
            }
            // In memory, a link's target is borrowed from the tree (it may
            // be tens of KiB long in a hostile one), not copied.
            let mut borrowed: Option<&str> = None;
            let kind = match tree {
                // One step from the parent's node, not a lookup of `here`.
                Some(tree) => {
                    let parent = nodes.last().copied().unwrap_or(MemTree::ROOT);
                    tree.child(parent, component).map(|id| {
                        nodes.push(id);
                        match &tree.node(id).entry {
                            Entry::Dir => Kind::Dir,
                            Entry::File(_) => Kind::File,
                            Entry::Symlink(t) => {
                                borrowed = Some(t.as_str());
                                Kind::Symlink(String::new())
                            }
                        }
                    })
                }
                None => self.kind(&here)?,
            };
            match kind {
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
                    let target: std::borrow::Cow<'_, str> = match borrowed {
                        Some(t) => t.into(),
                        None => target.into(),
                    };
                    if self.recorder.is_some() {
                        self.note(&here, Entry::Symlink(target.to_string()));
                    }
                    pop(&mut here, &mut ends, &mut nodes);
                    if target.starts_with('/') {
                        here.clear();
                        ends.clear();
                        nodes.clear();
                    }
                    targets.push(target);
                    tried.push(false);
                    todo.push((targets.len(), 0));
                }
                Some(Kind::File) if !last => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{here}: not a directory"),
                    ));
                }
                Some(Kind::Dir) if last && self.recorder.is_some() => {
                    // A directory reached but perhaps never read from: keep
                    // it, so the path still resolves in a snapshot.
                    self.note(&here, Entry::Dir);
                }
                Some(_) => {}
            }
        }
        let node = tree.and_then(|_| {
            if ends.is_empty() {
                Some(MemTree::ROOT)
            } else {
                (nodes.len() == ends.len())
                    .then(|| nodes.last().copied())
                    .flatten()
            }
        });
        if tree.is_some() && node.is_some() && ends.len() >= CURSOR_DEPTH && self.recorder.is_none()
        {
            let cursor = Cursor {
                here: here.clone(),
                ends,
                nodes,
            };
            CURSOR.with_borrow_mut(|c| *c = Some((self.id, cursor)));
        }
        Ok((here, node))
    }

    /// How much of `rest` (components still to walk from `here`, which
    /// has `depth` of them) the last deep path resolved already walked:
    /// the state after those components, and the bytes of `rest` used.
    /// Only plain components (no `.`, `..`) are taken, each one a
    /// directory there (so never a symlink: the cursor's path is
    /// canonical).
    fn cursor_skip(&self, tree: &MemTree, here: &str, depth: usize, rest: &str) -> Option<Skip> {
        let (id, mut cur) = CURSOR.with_borrow_mut(|c| c.take())?;
        let found = (id == self.id)
            .then(|| cursor_match(&cur, tree, here, depth, rest))
            .flatten();
        let Some((m, new_end, used)) = found else {
            // Not this time: leave it for the next resolution.
            CURSOR.with_borrow_mut(|c| *c = Some((id, cur)));
            return None;
        };
        // Taken, not copied: the resolution puts its result back.
        cur.here.truncate(new_end);
        cur.ends.truncate(m);
        cur.nodes.truncate(m);
        Some(Skip {
            here: cur.here,
            ends: cur.ends,
            nodes: cur.nodes,
            used,
        })
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

    /// The directory at `path`, resolved (following a final symlink) and,
    /// where the root allows, held open for [`read_at`](Self::read_at) and
    /// friends.
    pub fn open_dir(&self, path: &str) -> io::Result<DirHandle> {
        if !self.holds_dirs() {
            let (path, node) = self.resolve_in(path, true)?;
            return Ok(DirHandle {
                path,
                fd: None,
                // Reads in it go straight to its node (when not recording,
                // which needs every step seen by `resolve`).
                node: node.filter(|_| self.recorder.is_none()),
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
                node: None,
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
                        node: None,
                    });
                }
                Some(Last::Other) => {
                    return Ok(DirHandle {
                        path: here(),
                        fd: None,
                        node: None,
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
                            node: None,
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
        let limit = read_limit(&path());
        if let Ok(f) = at::open_without_links(fd.as_fd(), &join(sub, name)) {
            return read_file(f.into(), limit).map_err(|e| self.named(&path(), e));
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
        match at::open(fd.as_fd(), &join(sub, name), READ_FLAGS) {
            Ok(f) => read_file(f.into(), limit).map_err(|e| self.named(&path(), e)),
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
        let parent = Arc::new(DirHandle {
            path,
            fd,
            node: None,
        });
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

    /// What `name` is in a directory of an in-memory tree held by its
    /// node: one step, rather than the directory's whole path again.
    fn mem_child(&self, dir: &DirHandle, name: &str) -> Option<Option<&Entry>> {
        match (&self.backing, dir.node) {
            (Backing::Memory { tree, .. }, Some(id)) if is_name(name) => {
                Some(tree.child(id, name).map(|c| &tree.node(c).entry))
            }
            _ => None,
        }
    }

    /// Reads `name` in a directory from [`open_dir`](Self::open_dir): the
    /// hot path of a scan, which reads a dozen attributes per device.
    pub fn read_at(&self, dir: &DirHandle, name: &str) -> io::Result<Vec<u8>> {
        match self.mem_child(dir, name) {
            Some(Some(Entry::File(b))) => return Ok(b.clone()),
            Some(None) => {
                // Named by the directory's last component: its whole path
                // may be tens of KiB in a hostile tree, and a scan asks for
                // many attributes that are not there.
                let last = dir.path.rsplit('/').next().unwrap_or("");
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(".../{last}/{name}: no such file"),
                ));
            }
            _ => {}
        }
        match &dir.fd {
            Some(fd) if is_name(name) => {
                let limit = limit_in(&dir.path, name);
                match at::open(fd.as_fd(), name, READ_FLAGS)
                    .and_then(|f| read_file(f.into(), limit))
                {
                    // A held directory means no recorder: nothing to note.
                    Ok(bytes) => Ok(bytes),
                    // A symlink: follow it inside the root.
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                        self.read(&join(&dir.path, name))
                    }
                    Err(e) => Err(self.named(&join(&dir.path, name), e)),
                }
            }
            _ => self.read(&join(&dir.path, name)),
        }
    }

    /// Whether `name` exists in a directory from
    /// [`open_dir`](Self::open_dir) (following a symlink there).
    pub fn exists_at(&self, dir: &DirHandle, name: &str) -> bool {
        match self.mem_child(dir, name) {
            Some(Some(Entry::File(_) | Entry::Dir)) => return true,
            Some(None) => return false,
            _ => {}
        }
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
        match self.mem_child(dir, name) {
            Some(Some(Entry::Symlink(t))) => return split(t).next_back().map(str::to_string),
            Some(_) => return None,
            None => {}
        }
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

/// Flags that open a directory as a handle to look names up in, and fail
/// on a symlink (with ENOTDIR) instead of following it.
const DIR_NOFOLLOW: rustix::fs::OFlags = rustix::fs::OFlags::PATH
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::NOFOLLOW);

fn open_path_dir(path: &Path) -> io::Result<OwnedFd> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(DIR_NOFOLLOW.bits() as libc::c_int)
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

/// Flags every file of a root is opened with, besides O_RDONLY, O_CLOEXEC
/// and O_NOFOLLOW: O_NONBLOCK, so that a FIFO planted where a file belongs
/// does not block the open (it is then refused by [`read_file`]).
const READ_FLAGS: rustix::fs::OFlags =
    rustix::fs::OFlags::RDONLY.union(rustix::fs::OFlags::NONBLOCK);

/// Reads a whole file, refusing to follow a symlink in its last component
/// (the path is already resolved; this keeps it so should the tree change).
fn read_nofollow(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    read_file(f, limit)
}

/// [`read_limit`] of `name` in `dir`, without joining them for the usual
/// case (a sysfs directory).
fn limit_in(dir: &str, name: &str) -> u64 {
    if dir.starts_with("sys/") {
        if name == "config" {
            MAX_CONFIG
        } else {
            MAX_SYSFS_ATTRIBUTE
        }
    } else {
        read_limit(&join(dir, name))
    }
}

/// What a file is, for a refusal.
fn file_kind(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Reads an open file to its end: only a regular file (what sysfs, procfs
/// and a capture hold; a FIFO or a device could block or never end), and
/// at most `limit` bytes (more is refused, not cut: a longer file is not
/// the kernel's).
fn read_file(f: fs::File, limit: u64) -> io::Result<Vec<u8>> {
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused(format!(
            "not a regular file ({})",
            file_kind(meta.file_type())
        )));
    }
    // sysfs reports 4096 (or the page size) whatever an attribute holds and
    // procfs 0, so the size is a bound to check, not the length to read.
    let too_large = || refused(format!("larger than {limit} bytes"));
    if meta.len() > limit.max(MAX_SYSFS_ATTRIBUTE) {
        return Err(too_large());
    }
    let bytes = read_to_end(f, limit)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads an open file to its end, or to `limit` + 1 bytes.
fn read_to_end(mut f: fs::File, limit: u64) -> io::Result<Vec<u8>> {
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
        let left = (limit + 1).saturating_sub(buf.len() as u64);
        f.take(left).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// `openat`, `openat2` and `readlinkat` relative to a directory held open,
/// which std does not offer (through rustix: no hand-written system calls).
/// Callers pass one path component (`is_name`), or `sub/name` where `sub`
/// was checked not to be a link (or, for openat2, is refused if it is
/// one): the kernel looks up only that, and never follows a symlink in the
/// last component.
mod at {
    use std::io;
    use std::os::fd::{BorrowedFd, OwnedFd};

    use rustix::fs::{Mode, OFlags, ResolveFlags};

    /// Opens `name` in `dir` with `flags` and O_NOFOLLOW: a symlink there
    /// fails (ELOOP, or ENOTDIR with O_DIRECTORY).
    pub fn open(dir: BorrowedFd<'_>, name: &str, flags: OFlags) -> io::Result<OwnedFd> {
        rustix::fs::openat(
            dir,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)
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
        let result = rustix::fs::openat2(
            dir,
            path,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
        )
        .map_err(io::Error::from);
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
        // sysfs targets are short: a small first buffer, grown by rustix
        // when the target is longer.
        let target =
            rustix::fs::readlinkat(dir, name, Vec::with_capacity(256)).map_err(io::Error::from)?;
        Ok(String::from_utf8_lossy(target.as_bytes()).into_owned())
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
fn read_archive_within(mut file: impl Read, bound: u64) -> Result<Loaded, String> {
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

    /// A gzip tar of `files`, then `tail` zero bytes after the tar's end.
    fn tar_gz(files: &[(&str, &[u8])], links: &[(&str, &str)], tail: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        for (name, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            b.append_link(&mut h, name, target).unwrap();
        }
        let mut raw = b.into_inner().unwrap();
        raw.resize(raw.len() + tail, 0);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn archive_bounds_say_too_large_and_the_crc_is_checked() {
        // A member larger than its kind can be: refused by its header.
        let big = vec![0u8; 5000];
        let e = read_archive(&tar_gz(&[("sys/devices/x/config", &big)], &[], 0)[..])
            .err()
            .unwrap();
        assert!(e.starts_with("too large: member"), "{e}");
        assert!(e.contains("more than the 4096"), "{e}");
        // A bomb: expands past the bound (here 1 MiB, 4 MiB of zeros).
        let bomb = tar_gz(&[("sys/a", b"x")], &[], 4 << 20);
        let e = read_archive_within(&bomb[..], 1 << 20).err().unwrap();
        assert!(e.starts_with("too large: it expands"), "{e}");
        assert!(read_archive_within(&bomb[..], 8 << 20).is_ok());
        // The gzip trailer's CRC-32 is checked.
        let mut bad = tar_gz(&[("sys/a", b"x")], &[], 0);
        let n = bad.len();
        bad[n - 8] ^= 0xff;
        let e = read_archive(&bad[..]).err().unwrap();
        assert!(e.contains("checksum"), "{e}");
        // Hard links are followed inside the archive, or noted.
        let ok = tar_gz(
            &[("sys/a", b"same")],
            &[("sys/b", "sys/a"), ("sys/c", "nowhere")],
            0,
        );
        let loaded = read_archive(&ok[..]).unwrap();
        assert_eq!(loaded.entries.get("sys/b"), Some(&file("same")));
        assert!(!loaded.entries.contains_key("sys/c"));
        assert!(
            loaded.notes[0].contains("`sys/c` is a hard link"),
            "{:?}",
            loaded.notes
        );
    }

    #[test]
    fn only_regular_files_within_their_bound_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let dev = d.join("sys/devices/pci0000:00/0000:00:01.0");
        fs::create_dir_all(&dev).unwrap();
        fs::create_dir_all(d.join("proc")).unwrap();
        let fifo = std::ffi::CString::new(dev.join("config").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo creates a file or fails.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        fs::File::create(dev.join("vendor"))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        fs::write(dev.join("device"), "0x1234\n").unwrap();
        let r = SystemRoot::open(d).unwrap();
        let p = "sys/devices/pci0000:00/0000:00:01.0";
        let e = r.read(&format!("{p}/config")).unwrap_err();
        assert!(e.to_string().contains("not a regular file (a FIFO)"), "{e}");
        let e = r.read(&format!("{p}/vendor")).unwrap_err();
        assert!(e.to_string().contains("larger than 65536 bytes"), "{e}");
        let h = r.open_dir(p).unwrap();
        assert!(r.read_at(&h, "config").is_err());
        assert_eq!(r.read_string_at(&h, "device").unwrap(), "0x1234");
        let notes = r.notes();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with(&format!("{p}/config: not a regular file")));
        // No sys/: not a root.
        let empty = tempfile::tempdir().unwrap();
        let e = SystemRoot::open(empty.path()).err().unwrap();
        assert!(e.to_string().contains("has no sys/ directory"), "{e}");
    }

    #[test]
    fn memory_tree_keeps_the_semantics_of_a_path_map() {
        let r = mem(&[
            ("a/b", file("file")),
            ("a/b/c", file("below a file")),
            ("x/y/z", file("deep")),
            ("x/l", link("y")),
            ("x/abs", link("/x/y")),
        ]);
        assert_eq!(r.read_string("x/y/z").unwrap(), "deep");
        assert_eq!(r.read_string("x/l/z").unwrap(), "deep");
        assert_eq!(r.read_string("x/abs/z").unwrap(), "deep");
        assert!(r.read("a/b/c").is_err(), "a file is not a directory");
        assert_eq!(r.read_dir("x").unwrap(), ["abs", "l", "y"]);
        assert!(r.read_dir("a/b").is_err());
        let h = r.open_dir("x/l").unwrap();
        assert_eq!(h.path(), "x/y");
        assert_eq!(r.read_string_at(&h, "z").unwrap(), "deep");
        assert!(r.read_at(&h, "none").is_err());
        assert!(r.exists_at(&h, "z") && !r.exists_at(&h, "none"));
        // Deep paths one after another take the cursor; same answers.
        let mut entries = BTreeMap::new();
        let mut path = String::from("sys/devices/pci0000:00");
        for i in 0..40 {
            path.push_str(&format!("/0000:{i:02x}:00.0"));
            entries.insert(format!("{path}/config"), file(&i.to_string()));
            entries.insert(
                format!("sys/bus/pci/devices/{i}"),
                link(&format!("../../../{}", &path[4..])),
            );
        }
        let r = SystemRoot::from_entries(Path::new("t"), entries);
        for i in 0..40 {
            let h = r.open_dir(&format!("sys/bus/pci/devices/{i}")).unwrap();
            assert_eq!(h.path().matches('/').count(), 3 + i, "{i}");
            assert_eq!(r.read_string_at(&h, "config").unwrap(), i.to_string());
        }
        for i in (0..40).rev() {
            let h = r
                .open_dir(&format!("sys/bus/pci/../pci/devices/{i}/."))
                .unwrap();
            assert_eq!(r.read_string_at(&h, "config").unwrap(), i.to_string());
        }
    }

    #[test]
    fn archive_names_reject_climbing() {
        assert_eq!(archive_name("./sys/x").as_deref(), Some("sys/x"));
        assert_eq!(archive_name("/sys/x").as_deref(), Some("sys/x"));
        assert_eq!(archive_name("sys/../../x"), None);
    }
}
