//! The system calls under a directory root: opening without following a
//! symlink, relative to a directory held open, and reading only regular
//! files, each within its bound. (No `unsafe` here: rustix and std make
//! the calls.)

use std::fs;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::limits::MAX_SYSFS_ATTRIBUTE;

/// Why a file was not read though it is there: not a regular file, or
/// larger than such a file can be. (The path is added by the root.)
#[derive(Debug)]
pub(super) struct Refused(pub(super) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Refused(why))
}

/// Flags that open a directory as a handle to look names up in, and fail
/// on a symlink (with ENOTDIR) instead of following it.
pub(super) const DIR_NOFOLLOW: rustix::fs::OFlags = rustix::fs::OFlags::PATH
    .union(rustix::fs::OFlags::DIRECTORY)
    .union(rustix::fs::OFlags::NOFOLLOW);

pub(super) fn open_path_dir(path: &Path) -> io::Result<OwnedFd> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(DIR_NOFOLLOW.bits() as libc::c_int)
        .open(path)
        .map(OwnedFd::from)
}

/// Flags every file of a root is opened with, besides O_RDONLY, O_CLOEXEC
/// and O_NOFOLLOW: O_NONBLOCK, so that a FIFO planted where a file belongs
/// does not block the open (it is then refused by [`read_file`]).
pub(super) const READ_FLAGS: rustix::fs::OFlags =
    rustix::fs::OFlags::RDONLY.union(rustix::fs::OFlags::NONBLOCK);

/// Reads a whole file, refusing to follow a symlink in its last component
/// (the path is already resolved; this keeps it so should the tree change).
pub(super) fn read_nofollow(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    read_file(f, limit)
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
pub(super) fn read_file(f: fs::File, limit: u64) -> io::Result<Vec<u8>> {
    // A small file (a sysfs attribute, config space) is read first and
    // looked at only when the read is not what an attribute gives: an
    // error, nothing, or more than the limit. The fstat that says why is
    // then paid once, instead of on every attribute (a fifth of a scan's
    // system calls). Reading first is safe because every file here was
    // opened O_NONBLOCK: a FIFO or a terminal answers at once (no bytes,
    // or EAGAIN) instead of blocking, and a device that streams
    // (/dev/zero) stops at `limit` + 1 bytes. The one thing this lets
    // through is a FIFO that a writer has filled: read like a file, at
    // most `limit` bytes, and trusted no more than a file's text.
    let bytes = if limit <= MAX_SYSFS_ATTRIBUTE {
        let read = read_to_end(&f, limit);
        if matches!(&read, Ok(b) if !b.is_empty() && b.len() as u64 <= limit) {
            return read;
        }
        check_regular(&f, limit)?;
        read?
    } else {
        check_regular(&f, limit)?;
        read_to_end(&f, limit)?
    };
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn too_large(limit: u64) -> io::Error {
    refused(format!("larger than {limit} bytes"))
}

/// A regular file held open to read parts of, at offsets (`pread`), where
/// reading the whole costs: sysfs `config` on a live machine, where every
/// 4 bytes read is one config access.
#[derive(Debug)]
pub struct FileParts {
    file: fs::File,
    len: u64,
}

impl FileParts {
    /// Refuses what [`read_file`] refuses: not a regular file, or larger
    /// than `limit`.
    pub(super) fn new(file: fs::File, limit: u64) -> io::Result<FileParts> {
        let len = check_regular(&file, limit)?;
        Ok(FileParts { file, len })
    }

    /// The size `stat` gives (for sysfs `config`, the function's config
    /// space size: 256 or 4096, whatever a reader without root may read).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether `stat` gives a size of 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` from `offset`; fewer bytes only at the end of the file.
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
}

/// Refuses what is not a regular file, or one larger than `limit`; the
/// size `stat` gives otherwise.
fn check_regular(f: &fs::File, limit: u64) -> io::Result<u64> {
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused(format!(
            "not a regular file ({})",
            file_kind(meta.file_type())
        )));
    }
    // sysfs reports 4096 (or the page size) whatever an attribute holds and
    // procfs 0, so the size is a bound to check, not the length to read.
    if meta.len() > limit.max(MAX_SYSFS_ATTRIBUTE) {
        return Err(too_large(limit));
    }
    Ok(meta.len())
}

/// Reads an open file to its end, or to `limit` + 1 bytes.
fn read_to_end(mut f: &fs::File, limit: u64) -> io::Result<Vec<u8>> {
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
pub(super) mod at {
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
