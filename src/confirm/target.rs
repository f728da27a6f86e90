//! The files and block devices a confirm reads and writes: opened with
//! O_DIRECT, sized, identified (for the journal), and checked before any
//! write: never a mounted device, one with partitions in use, one held by
//! device-mapper/md, or active swap.
//!
//! The sysfs and procfs read here (`/sys/dev/block`, `/sys/class/block`,
//! `/sys/block`, `/proc/self/mountinfo`, `/proc/swaps`) are this machine's
//! on purpose, not the system root's: they say whether the file actually
//! opened here is mounted, held or swapped on, which only the running
//! kernel knows, and a capture's tree must never vouch for a host device.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    BlockDevice,
    File,
}

/// Which inode a target is, so a journal is never restored onto another
/// device that took the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Identity {
    /// st_rdev for a block device, st_dev for a file.
    pub dev: u64,
    /// 0 for a block device.
    pub ino: u64,
    pub size: u64,
    /// The namespace's world-wide ID (sysfs `wwid`: EUI-64, NGUID or the
    /// serial), which stays with the drive when device numbers are handed
    /// out in another order after a reboot. None where the kernel has none
    /// (loop devices, partitions).
    #[serde(default)]
    pub wwid: Option<String>,
}

/// An open target.
#[derive(Debug)]
pub struct Target {
    pub path: PathBuf,
    pub file: File,
    pub kind: TargetKind,
    pub size: u64,
    /// The logical block size: offsets and lengths must be multiples of it.
    pub block_size: u32,
    pub identity: Identity,
    /// `nvme0n1`: the kernel's name, for a block device.
    pub kernel_name: Option<String>,
}

/// Why a target was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot open {path}: {source}{hint}", hint = open_hint(source))]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "{path} is being written by another run ({holder}): wait for it to finish, or pass --wait to start when it does"
    )]
    Busy { path: PathBuf, holder: String },
    #[error("{path} is neither a block device nor a regular file")]
    Kind { path: PathBuf },
    #[error("refusing to write to {path}: {why}; pass --force if you are sure nothing uses it")]
    InUse { path: PathBuf, why: String },
    #[error("cannot read the size of {path}: {source}")]
    Size { path: PathBuf, source: io::Error },
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => " (run as root)",
        Some(libc::EBUSY) => {
            " (the kernel holds it: mounted, in a RAID/LVM set, or opened exclusively, perhaps by another run writing it, which --wait waits for)"
        }
        Some(libc::EINVAL) => " (the file system does not support O_DIRECT)",
        _ => "",
    }
}

const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
const BLKSSZGET: libc::c_ulong = 0x1268;

impl Target {
    /// Opens for O_DIRECT reads, and writes when `write`. A block device
    /// opened for writing is checked for users first (unless `force`) and
    /// opened O_EXCL, which the kernel refuses while it is mounted or held.
    pub fn open(path: &Path, write: bool, force: bool) -> Result<Target, TargetError> {
        let meta = std::fs::metadata(path).map_err(|source| TargetError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let ft = meta.file_type();
        let kind = if ft.is_block_device() {
            TargetKind::BlockDevice
        } else if ft.is_file() {
            TargetKind::File
        } else {
            return Err(TargetError::Kind {
                path: path.to_path_buf(),
            });
        };
        let kernel_name = (kind == TargetKind::BlockDevice)
            .then(|| block_name(meta.rdev()))
            .flatten();
        if write && !force && kind == TargetKind::BlockDevice {
            let rdev = meta.rdev();
            if let Some(why) = in_use(rdev, kernel_name.as_deref()) {
                return Err(TargetError::InUse {
                    path: path.to_path_buf(),
                    why,
                });
            }
        }
        if write && !force && kind == TargetKind::File {
            // A file system mounted from this file through a loop device
            // is as mounted as a disk: its mount shows the loop device.
            if let Some(why) = loop_in_use(&meta) {
                return Err(TargetError::InUse {
                    path: path.to_path_buf(),
                    why,
                });
            }
        }
        let mut flags = libc::O_DIRECT;
        if write && kind == TargetKind::BlockDevice && !force {
            flags |= libc::O_EXCL;
        }
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(flags)
                .open(path)
        };
        let file = loop {
            match open() {
                Ok(f) => break f,
                // Opened exclusively by someone: the checks above found no
                // mount or holder, so most likely another run writing it.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && flags & libc::O_EXCL != 0 => {
                    if super::journal::waiting() {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        continue;
                    }
                    if let Some(holder) = super::journal::holder_of(path) {
                        return Err(TargetError::Busy {
                            path: path.to_path_buf(),
                            holder,
                        });
                    }
                    return Err(TargetError::Open {
                        path: path.to_path_buf(),
                        source: e,
                    });
                }
                Err(source) => {
                    return Err(TargetError::Open {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        };
        let (size, block_size) = match kind {
            TargetKind::File => (meta.len(), 512),
            TargetKind::BlockDevice => {
                let mut size: u64 = 0;
                let mut bs: libc::c_int = 0;
                // SAFETY: the two block-device ioctls write one integer each.
                let rc = unsafe {
                    libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size)
                        | libc::ioctl(file.as_raw_fd(), BLKSSZGET as _, &mut bs)
                };
                if rc < 0 {
                    return Err(TargetError::Size {
                        path: path.to_path_buf(),
                        source: io::Error::last_os_error(),
                    });
                }
                (size, bs.max(512) as u32)
            }
        };
        let identity = match kind {
            TargetKind::BlockDevice => Identity {
                dev: meta.rdev(),
                ino: 0,
                size,
                wwid: kernel_name.as_deref().and_then(|n| {
                    std::fs::read_to_string(format!("/sys/class/block/{n}/wwid"))
                        .ok()
                        .map(|w| w.trim().to_string())
                        .filter(|w| !w.is_empty())
                }),
            },
            TargetKind::File => Identity {
                dev: meta.dev(),
                ino: meta.ino(),
                size,
                wwid: None,
            },
        };
        Ok(Target {
            path: path.to_path_buf(),
            file,
            kind,
            size,
            block_size,
            identity,
            kernel_name,
        })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }

    /// Whether `[offset, offset+len)` lies inside and is aligned for O_DIRECT.
    pub fn check_range(&self, offset: u64, len: u64) -> Result<(), String> {
        let bs = self.block_size.max(4096) as u64;
        if !offset.is_multiple_of(bs) || !len.is_multiple_of(bs) {
            return Err(format!(
                "offset {offset} and length {len} must be multiples of {bs} bytes for O_DIRECT on {}",
                self.path.display()
            ));
        }
        if len == 0 {
            return Err(format!("nothing to transfer on {}", self.path.display()));
        }
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(format!(
                "{} is {} bytes; the range {offset}..{} runs past its end",
                self.path.display(),
                self.size,
                offset.saturating_add(len)
            ));
        }
        Ok(())
    }
}

/// Whether two paths name the same file or device (a device node and a
/// symlink to it, `/dev/disk/by-id/...`, count as the same).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => a == b,
    }
}

/// `nvme0n1` for a block device number, from /sys/dev/block/MAJ:MIN.
fn block_name(rdev: u64) -> Option<String> {
    let link = format!("/sys/dev/block/{}:{}", libc::major(rdev), libc::minor(rdev));
    std::fs::read_link(link)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// Why a block device must not be written, if anything uses it: mounted
/// (itself or a partition), held by dm/md/bcache (holders/), or swap.
pub fn in_use(rdev: u64, name: Option<&str>) -> Option<String> {
    let mut devs = vec![(
        libc::major(rdev),
        libc::minor(rdev),
        name.map(str::to_string),
    )];
    let mut holders = Vec::new();
    if let Some(name) = name {
        let dir = format!("/sys/class/block/{name}");
        holders.extend(
            list(&format!("{dir}/holders"))
                .into_iter()
                .map(|h| (name.to_string(), h)),
        );
        for part in list(&dir) {
            let pdir = format!("{dir}/{part}");
            if !Path::new(&format!("{pdir}/partition")).exists() {
                continue;
            }
            if let Ok(dev) = std::fs::read_to_string(format!("{pdir}/dev"))
                && let Some((ma, mi)) = dev.trim().split_once(':')
                && let (Ok(ma), Ok(mi)) = (ma.parse(), mi.parse())
            {
                devs.push((ma, mi, Some(part.clone())));
            }
            holders.extend(
                list(&format!("{pdir}/holders"))
                    .into_iter()
                    .map(|h| (part.clone(), h)),
            );
        }
    }
    if let Some((dev, holder)) = holders.first() {
        return Some(format!(
            "{dev} is held by {holder} (device-mapper, md or bcache)"
        ));
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in mounts.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() < 5 {
                continue;
            }
            if let Some((ma, mi)) = f[2].split_once(':')
                && let (Ok(ma), Ok(mi)) = (ma.parse::<u32>(), mi.parse::<u32>())
                && let Some((_, _, n)) = devs.iter().find(|(a, b, _)| *a == ma && *b == mi)
            {
                return Some(format!(
                    "{} is mounted on {}",
                    n.as_deref().unwrap_or("it"),
                    f[4]
                ));
            }
        }
    }
    if let Ok(swaps) = std::fs::read_to_string("/proc/swaps") {
        for line in swaps.lines().skip(1) {
            if let Some(p) = line.split_whitespace().next()
                && let Ok(m) = std::fs::metadata(p)
                && m.file_type().is_block_device()
                && devs
                    .iter()
                    .any(|(a, b, _)| libc::major(m.rdev()) == *a && libc::minor(m.rdev()) == *b)
            {
                return Some(format!("{p} is in use as swap"));
            }
        }
    }
    None
}

/// Whether a loop device whose backing file is the file `meta` describes
/// is in use (mounted, held, swap): from /sys/block/loop*/loop/backing_file.
pub fn loop_in_use(meta: &std::fs::Metadata) -> Option<String> {
    for name in list("/sys/block") {
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
        else {
            continue;
        };
        let backing = backing.trim_end_matches('\n');
        let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
        let Ok(b) = std::fs::metadata(backing) else {
            continue;
        };
        if b.dev() != meta.dev() || b.ino() != meta.ino() {
            continue;
        }
        let Ok(dev) = std::fs::read_to_string(format!("/sys/block/{name}/dev")) else {
            continue;
        };
        let Some((ma, mi)) = dev.trim().split_once(':') else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (ma.parse::<u32>(), mi.parse::<u32>()) else {
            continue;
        };
        if let Some(why) = in_use(libc::makedev(ma, mi), Some(&name)) {
            return Some(format!("it backs /dev/{name}, and {why}"));
        }
    }
    None
}

fn list(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_file_target_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk");
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        let t = match Target::open(&p, true, false) {
            Ok(t) => t,
            // a file system without O_DIRECT (old tmpfs): nothing to test here
            Err(TargetError::Open { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) =>
            {
                return;
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(t.kind, TargetKind::File);
        assert_eq!(t.size, 1 << 20);
        assert!(t.check_range(0, 1 << 20).is_ok());
        assert!(
            t.check_range(4096, 1 << 20)
                .unwrap_err()
                .contains("past its end")
        );
        assert!(t.check_range(100, 4096).unwrap_err().contains("multiples"));
    }

    #[test]
    fn not_a_file_is_refused() {
        let e = Target::open(Path::new("/dev/null"), false, false).unwrap_err();
        assert!(e.to_string().contains("neither a block device"), "{e}");
        let e = Target::open(Path::new("/nonexistent/x"), false, false).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
    }
}
