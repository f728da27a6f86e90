//! Save before writing, restore after: the journal.
//!
//! Before a confirm writes a range of a device, the range is read and kept
//! in memory and in a journal file (fsynced, then renamed into place). After
//! the writes, the data goes back, is read back and compared, and the
//! journal is removed. A journal left behind by a crash, a kill or a power
//! cut is found by the next `copy`, `check --confirm` or `restore` and put
//! back, after checking that the device is the same one.
//!
//! Two guards make that safe on a shared machine:
//! - a claim: before the range is even looked at, the target itself is
//!   flocked (exclusively, by this run), so two runs writing one target
//!   cannot both pass the overlap check; the second is refused with the
//!   holder's pid (from /proc/locks), or waits with `--wait`;
//! - trust: a journal decides what is written where, so only journals that
//!   the effective user owns, in a directory nobody else can write into
//!   (or a sticky one of ours), are read; others are refused, and said so.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::buffer::DmaBuffer;
use super::target::{Identity, Target};

const MAGIC: &[u8] = b"P2PDOCTOR-JOURNAL 1\n";
/// The longest header line read (ours are ~300 bytes).
const MAX_HEADER: usize = 4096;

/// The journal directory: P2PDOCTOR_JOURNAL_DIR, else /var/lib/p2pdoctor/journal
/// for root, else $XDG_STATE_HOME (or ~/.local/state, from $HOME or the
/// password database)/p2pdoctor/journal. Never a shared directory such as
/// /tmp: where none of those is known, it is an error.
pub fn default_dir() -> Result<PathBuf, JournalError> {
    if let Some(d) = std::env::var_os("P2PDOCTOR_JOURNAL_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let euid = euid();
    if euid == 0 {
        return Ok(PathBuf::from("/var/lib/p2pdoctor/journal"));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| Path::new(d).is_absolute())
                .map(PathBuf::from)
                .or_else(|| home_of(euid))
                .map(|h| h.join(".local/state"))
        })
        .ok_or(JournalError::NoDir)?;
    Ok(state.join("p2pdoctor/journal"))
}

/// The effective user.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The home directory of `uid` from the password database.
fn home_of(uid: u32) -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid `struct passwd` (pointers null).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `pw`, `buf` (of the length passed) and `found` are valid for
    // writing and outlive the call; getpwuid_r fills `pw` with pointers
    // into `buf` and sets `found` to `&pw` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points at a NUL-terminated string inside `buf`.
    let dir = unsafe { CStr::from_ptr(pw.pw_dir) };
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    dir.is_absolute().then(|| dir.to_path_buf())
}

/// Whether a run waits for another run's claim on its target (`--wait`)
/// instead of being refused.
static WAIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes later saves wait for a target another run is writing (`--wait`).
pub fn set_wait(wait: bool) {
    WAIT.store(wait, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `--wait` was given.
pub fn waiting() -> bool {
    WAIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Who holds the claim on the file or device node at `path`, described
/// (pid and command), if /proc/locks names anyone.
pub fn holder_of(path: &Path) -> Option<String> {
    let f = File::open(path).ok()?;
    lock_holder(&f).map(|h| describe_holder(&Some(h)))
}

/// Checks that a journal directory can be trusted: a directory owned by
/// the effective user that no one else can write into (group- or
/// world-writable only with the sticky bit), below parents owned by root or
/// us that no one else can write into either (sticky ones like /tmp pass).
/// Anyone who could write there could plant a journal (bytes to be written
/// onto a device) or swap the directory.
pub fn check_dir(dir: &Path) -> Result<(), JournalError> {
    use std::os::unix::fs::MetadataExt;
    let untrusted = |why: String| JournalError::Untrusted {
        dir: dir.to_path_buf(),
        why,
    };
    let me = euid();
    let meta = std::fs::metadata(dir).map_err(|source| JournalError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(untrusted("it is not a directory".into()));
    }
    let mode = meta.mode();
    if meta.uid() != me {
        return Err(untrusted(format!(
            "it belongs to uid {}, not to uid {me} that runs p2pdoctor",
            meta.uid()
        )));
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(untrusted(format!(
            "others can write into it (mode {:o}, not sticky)",
            mode & 0o7777
        )));
    }
    let full = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for parent in full.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(parent) else {
            continue;
        };
        let mode = m.mode();
        if m.uid() != 0 && m.uid() != me {
            return Err(untrusted(format!(
                "its parent {} belongs to uid {}, who could replace it",
                parent.display(),
                m.uid()
            )));
        }
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(untrusted(format!(
                "others can write into its parent {} (mode {:o}, not sticky) and replace it",
                parent.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

/// Creates the journal directory (0700) if needed, then checks it.
fn prepare_dir(dir: &Path) -> Result<(), JournalError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| JournalError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    check_dir(dir)
}

/// Opens a journal file to read it, refusing what this user did not write:
/// a symlink (O_NOFOLLOW), anything but a regular file (a FIFO would block:
/// O_NONBLOCK), a file owned by another user or that others may write.
/// Returns the file and its size.
fn open_trusted(path: &Path) -> io::Result<(File, u64)> {
    use std::os::unix::fs::MetadataExt;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                untrusted_file("it is a symbolic link")
            } else {
                e
            }
        })?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(untrusted_file("it is not a regular file"));
    }
    let me = euid();
    if meta.uid() != me {
        return Err(untrusted_file(&format!(
            "it belongs to uid {}, not to uid {me} that runs p2pdoctor",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted_file(&format!(
            "others may write to it (mode {:o})",
            meta.mode() & 0o7777
        )));
    }
    Ok((f, meta.len()))
}

/// The error kind of a journal refused by [`open_trusted`] (its message
/// says why).
fn untrusted_file(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, Untrusted(why.to_string()))
}

#[derive(Debug)]
struct Untrusted(String);

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untrusted {}

fn is_untrusted(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Untrusted>())
}

/// Takes the claim on a target: an exclusive flock on the target itself
/// (the open file description `t.file` holds; a duplicate is returned to
/// keep it alive as long as the journal). Taken before the overlap check,
/// so two runs cannot both pass it. Within one run the claim is shared
/// (flock on the same open file description again is a no-op).
fn claim(t: &Target, wait: bool) -> Result<File, JournalError> {
    use std::fs::TryLockError;
    let held = t.file.try_clone().map_err(|source| JournalError::Claim {
        device: t.path.clone(),
        source,
    })?;
    loop {
        // std's File::lock/try_lock are flock(LOCK_EX[|LOCK_NB]) on Linux.
        let r = if wait {
            held.lock().map_err(TryLockError::Error)
        } else {
            held.try_lock()
        };
        match r {
            Ok(()) => return Ok(held),
            Err(TryLockError::WouldBlock) => {
                return Err(JournalError::Busy {
                    device: t.path.clone(),
                    holder: lock_holder(&held),
                });
            }
            Err(TryLockError::Error(e))
                if e.kind() == io::ErrorKind::Interrupted && !super::signal::interrupted() =>
            {
                continue;
            }
            Err(TryLockError::Error(source)) => {
                return Err(JournalError::Claim {
                    device: t.path.clone(),
                    source,
                });
            }
        }
    }
}

/// Who holds a flock on the file `f` is open on: the pid and command from
/// /proc/locks (`1: FLOCK  ADVISORY  WRITE 1234 08:02:131 0 EOF`).
fn lock_holder(f: &File) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let meta = f.metadata().ok()?;
    let want = format!(
        "{:02x}:{:02x}:{}",
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 6 && f[1] == "FLOCK" && f[5] == want)
            .then(|| f[4].parse::<u32>().ok())
            .flatten()
    })?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    Some((pid, comm))
}

fn describe_holder(holder: &Option<(u32, String)>) -> String {
    match holder {
        Some((pid, comm)) if !comm.is_empty() => format!("pid {pid}, {comm}"),
        Some((pid, _)) => format!("pid {pid}"),
        None => "a process that /proc/locks does not name".to_string(),
    }
}

/// The header of a journal file (one JSON line after the magic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub device: PathBuf,
    pub identity: Identity,
    pub offset: u64,
    pub length: u64,
    pub pid: u32,
    /// Seconds since the epoch.
    pub started: u64,
    /// FNV-1a of the saved bytes: catches a torn journal file, nothing more
    /// (the restore itself is checked byte for byte).
    pub fnv1a: u64,
}

/// A saved range, live until restored. The journal file is held open with
/// an exclusive flock for as long as this lives, which is how a later run
/// tells a live run's journal from a dead one's (a PID can be reused).
pub struct Journal {
    pub path: PathBuf,
    pub header: Header,
    saved: DmaBuffer,
    _lock: Option<File>,
    /// The claim on the target (see [`claim`]), while the range is ours.
    _claim: Option<File>,
}

/// An exclusive flock on `f` without waiting (std's File::try_lock);
/// whether it was taken.
fn lock(f: &File) -> bool {
    f.try_lock().is_ok()
}

/// Why saving or restoring failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "no journal directory: neither HOME nor XDG_STATE_HOME is set and the password database has no home for this user; set P2PDOCTOR_JOURNAL_DIR or pass --journal-dir (a directory only you can write into)"
    )]
    NoDir,
    #[error(
        "refusing the journal directory {dir}: {why}; a journal there decides what is written onto a device, so it must be a directory only you can write into (choose one with --journal-dir or P2PDOCTOR_JOURNAL_DIR)"
    )]
    Untrusted { dir: PathBuf, why: String },
    #[error(
        "{device} is being written by another run ({holder}, holding a lock on it): wait for it to finish, or pass --wait to start when it does",
        holder = describe_holder(holder)
    )]
    Busy {
        device: PathBuf,
        holder: Option<(u32, String)>,
    },
    #[error("cannot lock {device} for writing: {source}")]
    Claim { device: PathBuf, source: io::Error },
    #[error(
        "cannot create the journal directory {dir}: {source} (choose another with --journal-dir)"
    )]
    Dir { dir: PathBuf, source: io::Error },
    #[error("cannot write the journal {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {len} bytes at offset {offset} of {device} to save them: {source}")]
    Save {
        device: PathBuf,
        offset: u64,
        len: u64,
        source: io::Error,
    },
    #[error(
        "restoring {len} bytes at offset {offset} of {device} failed: {source}; the journal {journal} keeps them: run `p2pdoctor restore`"
    )]
    Restore {
        device: PathBuf,
        offset: u64,
        len: u64,
        journal: PathBuf,
        source: io::Error,
    },
    #[error(
        "after restoring {device} at offset {offset}, {differ} bytes read back differ; the journal {journal} keeps the original: run `p2pdoctor restore`"
    )]
    Verify {
        device: PathBuf,
        offset: u64,
        differ: u64,
        journal: PathBuf,
    },
    #[error(
        "the range is still held by the journal {journal} (an earlier restore failed or a run is going on): run `p2pdoctor restore` first; nothing was written"
    )]
    Pending { journal: PathBuf },
    #[error("{0}")]
    Buffer(#[from] super::buffer::BufferError),
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads (or writes) `len` bytes at `offset` of `t` into (from) `buf`,
/// whole, retrying short transfers; a write is synced to the device.
fn transfer_full(
    t: &Target,
    buf: &DmaBuffer,
    offset: u64,
    len: usize,
    write: bool,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut done = 0usize;
    while done < len {
        let (ptr, n, at) = (
            buf.ptr_at(done),
            len - done,
            (offset + done as u64) as libc::off_t,
        );
        // SAFETY: in bounds of the buffer; the descriptor is open.
        let rc = unsafe {
            if write {
                libc::pwrite(t.fd().as_raw_fd(), ptr.cast(), n, at)
            } else {
                libc::pread(t.fd().as_raw_fd(), ptr.cast(), n, at)
            }
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of device",
            ));
        }
        done += rc as usize;
    }
    if write {
        t.file.sync_all()?;
    }
    Ok(())
}

impl Journal {
    /// Reads `[offset, offset+len)` of `t` and writes it to a journal in
    /// `dir` before anything else touches the range.
    pub fn save(t: &Target, offset: u64, len: u64, dir: &Path) -> Result<Journal, JournalError> {
        prepare_dir(dir)?;
        // The target is ours before anything is looked at: another run's
        // check and save cannot interleave with ours.
        let claim = claim(t, WAIT.load(std::sync::atomic::Ordering::Relaxed))?;
        // Never save over a range another journal still holds: its saved
        // bytes are the original, ours would be whatever is there now.
        // (Journals this user did not write are not ours to honour.)
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.filter_map(|e| e.ok()) {
                let p = e.path();
                if p.extension().is_none_or(|x| x != "journal") {
                    continue;
                }
                if let Ok(h) = Journal::load_header(&p)
                    && h.identity == t.identity
                    && h.offset < offset + len
                    && offset < h.offset + h.length
                {
                    return Err(JournalError::Pending { journal: p });
                }
            }
        }
        let saved = DmaBuffer::host(len as usize)?;
        transfer_full(t, &saved, offset, len as usize, false).map_err(|source| {
            JournalError::Save {
                device: t.path.clone(),
                offset,
                len,
                source,
            }
        })?;
        // SAFETY: the transfer into `saved` has finished and nothing else
        // holds it.
        let data = unsafe { saved.slice(0, len as usize) };
        let header = Header {
            device: t.path.clone(),
            identity: t.identity.clone(),
            offset,
            length: len,
            pid: std::process::id(),
            started: now_secs(),
            fnv1a: fnv1a(data),
        };
        let stem: String = t
            .path
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // unique per run and experiment: a rename never replaces a journal
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unique = format!("{stem}-{offset}-{}-{}-{seq}", header.pid, header.started);
        let path = dir.join(format!("{unique}.journal"));
        let tmp = dir.join(format!(".{unique}.tmp"));
        let write = || -> io::Result<File> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            if !lock(&f) {
                return Err(io::Error::other("cannot lock the new journal"));
            }
            f.write_all(MAGIC)?;
            f.write_all(serde_json::to_string(&header)?.as_bytes())?;
            f.write_all(b"\n")?;
            f.write_all(data)?;
            f.sync_all()?;
            if path.exists() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(&tmp, &path)?;
            sync_dir(dir);
            Ok(f)
        };
        let held = write().map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            JournalError::Write {
                path: path.clone(),
                source,
            }
        })?;
        Ok(Journal {
            path,
            header,
            saved,
            _lock: Some(held),
            _claim: Some(claim),
        })
    }

    /// Puts the saved bytes back, reads them back, compares, and removes the
    /// journal. On failure the journal stays for `p2pdoctor restore`.
    pub fn restore(self, t: &Target) -> Result<u64, JournalError> {
        let h = &self.header;
        let len = h.length as usize;
        let fail = |source| JournalError::Restore {
            device: h.device.clone(),
            offset: h.offset,
            len: h.length,
            journal: self.path.clone(),
            source,
        };
        transfer_full(t, &self.saved, h.offset, len, true).map_err(fail)?;
        let check = DmaBuffer::host(len)?;
        transfer_full(t, &check, h.offset, len, false).map_err(fail)?;
        // SAFETY: both transfers have finished; only these shared views
        // of the two buffers exist while they are compared.
        let c = super::buffer::compare(
            unsafe { check.slice(0, len) },
            unsafe { self.saved.slice(0, len) },
            h.offset,
            None,
        );
        if !c.matches() {
            return Err(JournalError::Verify {
                device: h.device.clone(),
                offset: h.offset,
                differ: c.bytes_differ,
                journal: self.path.clone(),
            });
        }
        std::fs::remove_file(&self.path).map_err(|source| JournalError::Write {
            path: self.path.clone(),
            source,
        })?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir);
        }
        Ok(h.length)
    }

    /// Only the header of a journal file.
    fn load_header(path: &Path) -> io::Result<Header> {
        let (f, _) = open_trusted(path)?;
        let mut head = Vec::with_capacity(MAX_HEADER);
        let n = f.take(MAX_HEADER as u64).read_to_end(&mut head)?;
        let rest = head[..n]
            .strip_prefix(MAGIC)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a journal"))?;
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no header"))?;
        serde_json::from_slice(&rest[..nl])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads a journal file back (only one this user wrote: see
    /// [`open_trusted`]).
    pub fn load(path: &Path) -> io::Result<Journal> {
        let (f, size) = open_trusted(path)?;
        Self::parse(f, size, path)
    }

    /// Reads a journal from `f`, which holds `size` bytes: the magic, a
    /// header line of at most [`MAX_HEADER`] bytes, then exactly the
    /// header's `length` bytes. Nothing more is read, whatever it claims.
    fn parse(f: impl Read, size: u64, path: &Path) -> io::Result<Journal> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let mut f = io::BufReader::new(f.take(size));
        let mut head = Vec::new();
        (&mut f)
            .take((MAGIC.len() + MAX_HEADER) as u64)
            .read_until(b'\n', &mut head)?;
        if head != MAGIC {
            return Err(bad("not a p2pdoctor journal"));
        }
        head.clear();
        (&mut f)
            .take(MAX_HEADER as u64)
            .read_until(b'\n', &mut head)?;
        if head.pop() != Some(b'\n') {
            return Err(bad("no header"));
        }
        let header: Header = serde_json::from_slice(&head).map_err(|e| bad(&e.to_string()))?;
        let at = (MAGIC.len() + head.len() + 1) as u64;
        if size.checked_sub(at) != Some(header.length) || header.length > usize::MAX as u64 {
            return Err(bad("the saved data is torn (length or checksum differs)"));
        }
        let mut data = Vec::with_capacity(header.length as usize);
        f.read_to_end(&mut data)?;
        if data.len() as u64 != header.length || fnv1a(&data) != header.fnv1a {
            return Err(bad("the saved data is torn (length or checksum differs)"));
        }
        let saved = DmaBuffer::host(data.len()).map_err(io::Error::other)?;
        // SAFETY: a buffer made just now; nothing else refers to it.
        unsafe { saved.slice_mut(0, data.len()) }.copy_from_slice(&data);
        Ok(Journal {
            path: path.to_path_buf(),
            header,
            saved,
            _lock: None,
            _claim: None,
        })
    }
}

/// What restoring one journal came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryOutcome {
    /// The saved range was written back.
    Restored,
    /// Its writer still runs, or another run writes the device: left for later.
    InUse,
    /// The device is not the one the journal was written for: kept.
    Skipped,
    /// The device could not be opened or written: kept.
    Failed,
    /// A journal this user did not write, or a symlink or special file:
    /// never applied.
    Refused,
    /// The directory itself: others can write into it.
    Untrusted,
}

/// What happened to one journal found at start-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    pub journal: PathBuf,
    pub device: Option<PathBuf>,
    pub offset: Option<u64>,
    pub length: Option<u64>,
    pub outcome: RecoveryOutcome,
    pub message: String,
}

/// Restores every journal left in `dir` by a run that is no longer alive
/// (its flock is gone with it).
pub fn recover(dir: &Path, force: bool) -> Vec<Recovery> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    if let Err(e) = check_dir(dir) {
        out.push(Recovery {
            journal: dir.to_path_buf(),
            device: None,
            offset: None,
            length: None,
            outcome: RecoveryOutcome::Untrusted,
            message: format!("{e}; no journal in it was read"),
        });
        return out;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .collect();
    paths.sort();
    for path in paths {
        let j = match Journal::load(&path) {
            Ok(j) => j,
            Err(e) if is_untrusted(&e) => {
                out.push(Recovery {
                    journal: path.clone(),
                    device: None,
                    offset: None,
                    length: None,
                    outcome: RecoveryOutcome::Refused,
                    message: format!(
                        "refusing the journal {}: {e}; only journals this user wrote are applied (a journal decides what is written onto a device); it is left in place: remove it if you did not make it",
                        path.display()
                    ),
                });
                continue;
            }
            Err(e) => {
                out.push(Recovery {
                    journal: path.clone(),
                    device: None,
                    offset: None,
                    length: None,
                    outcome: RecoveryOutcome::Failed,
                    message: format!(
                        "cannot read the journal {}: {e}; it is left in place",
                        path.display()
                    ),
                });
                continue;
            }
        };
        let h = j.header.clone();
        let rec = |outcome: RecoveryOutcome, message: String| Recovery {
            journal: path.clone(),
            device: Some(h.device.clone()),
            offset: Some(h.offset),
            length: Some(h.length),
            outcome,
            message,
        };
        let busy = open_trusted(&path).map(|(f, _)| !lock(&f)).unwrap_or(false);
        if busy {
            out.push(rec(
                RecoveryOutcome::InUse,
                format!(
                    "the run that wrote it (pid {}) is still going; left alone",
                    h.pid
                ),
            ));
            continue;
        }
        let t = match Target::open(&h.device, true, force) {
            Ok(t) => t,
            Err(e) => {
                out.push(rec(
                    RecoveryOutcome::Failed,
                    format!(
                        "cannot open {} to restore it: {e}; the journal is kept",
                        h.device.display()
                    ),
                ));
                continue;
            }
        };
        // Another run writing this target (perhaps another range of it)
        // goes first; what it left, if it dies, is for the next restore.
        let _claim = match claim(&t, false) {
            Ok(c) => c,
            Err(e) => {
                out.push(rec(
                    RecoveryOutcome::InUse,
                    format!("{e}; this journal is left for later"),
                ));
                continue;
            }
        };
        if t.identity != h.identity {
            out.push(rec(RecoveryOutcome::Skipped, format!(
                "{} is not the device the journal was written for (device number, inode, size or world-wide ID changed); the journal is kept",
                h.device.display()
            )));
            continue;
        }
        out.push(match j.restore(&t) {
            Ok(n) => rec(
                RecoveryOutcome::Restored,
                format!(
                    "restored {n} bytes at offset {} of {} left by an interrupted run (pid {})",
                    h.offset,
                    h.device.display(),
                    h.pid
                ),
            ),
            Err(e) => rec(RecoveryOutcome::Failed, e.to_string()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &Path, bytes: &[u8]) -> Option<Target> {
        let p = dir.join("disk.img");
        std::fs::write(&p, bytes).unwrap();
        Target::open(&p, true, false).ok()
    }

    #[test]
    fn save_then_restore_puts_the_bytes_back() {
        let dir = tempfile::tempdir().unwrap();
        let orig: Vec<u8> = (0..1 << 16).map(|i| (i * 7 % 256) as u8).collect();
        let Some(t) = target(dir.path(), &orig) else {
            return;
        };
        let jdir = dir.path().join("journal");
        let j = Journal::save(&t, 8192, 16384, &jdir).unwrap();
        assert!(j.path.exists());
        std::fs::write(dir.path().join("disk.img"), vec![0xee; 1 << 16]).unwrap();
        assert_eq!(j.restore(&t).unwrap(), 16384);
        let now = std::fs::read(dir.path().join("disk.img")).unwrap();
        assert_eq!(&now[8192..8192 + 16384], &orig[8192..8192 + 16384]);
        assert_eq!(
            std::fs::read_dir(&jdir).unwrap().count(),
            0,
            "journal removed"
        );
    }

    #[test]
    fn a_journal_of_a_dead_run_is_recovered_and_a_torn_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let orig = vec![0x5au8; 1 << 16];
        let Some(t) = target(dir.path(), &orig) else {
            return;
        };
        let jdir = dir.path().join("journal");
        let j = Journal::save(&t, 0, 4096, &jdir).unwrap();
        let jpath = j.path.clone();
        // pretend the writer died: rewrite the header with a dead pid
        let mut text = std::fs::read(&jpath).unwrap();
        let hdr_end = MAGIC.len()
            + text[MAGIC.len()..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap();
        let mut h: Header = serde_json::from_slice(&text[MAGIC.len()..hdr_end]).unwrap();
        h.pid = 0x3fff_fff0; // no such process
        let mut new = MAGIC.to_vec();
        new.extend(serde_json::to_vec(&h).unwrap());
        new.extend(&text[hdr_end..]);
        std::fs::write(&jpath, &new).unwrap();
        // the run "dies": its locks (on the journal and the target) go with it
        drop(j);
        drop(t);
        std::fs::write(dir.path().join("disk.img"), vec![0u8; 1 << 16]).unwrap();
        let recs = recover(&jdir, false);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].outcome, RecoveryOutcome::Restored, "{:?}", recs[0]);
        assert_eq!(
            &std::fs::read(dir.path().join("disk.img")).unwrap()[..4096],
            &orig[..4096]
        );
        // torn: the data is cut short
        text = new;
        text.truncate(text.len() - 100);
        let torn = jdir.join("torn.journal");
        std::fs::write(&torn, &text).unwrap();
        let recs = recover(&jdir, false);
        assert_eq!(recs[0].outcome, RecoveryOutcome::Failed);
        assert!(recs[0].message.contains("torn"), "{}", recs[0].message);
        assert!(torn.exists());
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    /// A live run's journal is left alone even if its PID means nothing, and
    /// a second save over the same range is refused while the first stands.
    #[test]
    fn a_held_journal_is_in_use_and_blocks_an_overlapping_save() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.img");
        std::fs::write(&p, vec![7u8; 1 << 16]).unwrap();
        let Ok(t) = Target::open(&p, true, false) else {
            return;
        };
        let jdir = dir.path().join("journal");
        let j = Journal::save(&t, 0, 8192, &jdir).unwrap();
        let recs = recover(&jdir, false);
        assert_eq!(recs[0].outcome, RecoveryOutcome::InUse, "{:?}", recs[0]);
        let e = Journal::save(&t, 4096, 8192, &jdir)
            .err()
            .expect("overlap refused");
        assert!(e.to_string().contains("still held by the journal"), "{e}");
        // a range beside it is fine
        let k = Journal::save(&t, 8192, 4096, &jdir).unwrap();
        assert_ne!(j.path, k.path);
        k.restore(&t).unwrap();
        j.restore(&t).unwrap();
        assert_eq!(std::fs::read_dir(&jdir).unwrap().count(), 0);
    }
}
