//! Directories resolved once and held open (O_PATH), and the reads
//! relative to them: the scan reads a dozen attributes per device, each a
//! one-component `openat` instead of a walk of the whole path. A symlink
//! met there goes back through the resolver.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::limits::{limit_in, read_limit};
use super::resolve::MAX_SYMLINKS;
use super::sys::{DIR_NOFOLLOW, FileParts, READ_FLAGS, at, open_path_dir, read_file};
use super::{Backing, Entry, SystemRoot, is_name, join, split, trimmed_text};

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
pub(super) const MAX_HELD: usize = 256;

/// What the last component of a path turned out to be (see `open_dir`).
enum Last {
    Dir(OwnedFd),
    Link(String),
    /// A file: resolved like any path, though reading in it will fail.
    Other,
}

impl SystemRoot {
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

    /// `name` in a directory from [`open_dir`](Self::open_dir), held open
    /// to read parts of: config space on a live machine, where reading it
    /// whole costs a config access per 4 bytes. None where this root gives
    /// files whole (an in-memory tree, a recording, a directory it does
    /// not hold open): the caller reads it with [`read_at`](Self::read_at)
    /// then, as it does after an error here (a symlink in its place, too).
    pub fn open_parts_at(&self, dir: &DirHandle, name: &str) -> Option<io::Result<FileParts>> {
        let fd = dir.fd.as_ref().filter(|_| is_name(name))?;
        let limit = limit_in(&dir.path, name);
        Some(
            at::open(fd.as_fd(), name, READ_FLAGS)
                .and_then(|f| FileParts::new(f.into(), limit))
                .map_err(|e| self.named(&join(&dir.path, name), e)),
        )
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
}
