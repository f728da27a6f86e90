//! How large each file read through a root may be: what the kernel makes,
//! no more. A larger file is refused rather than read.

use super::{KERNEL_LOG_FILE, join};

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

/// [`read_limit`] of `name` in `dir`, without joining them for the usual
/// case (a sysfs directory).
pub(super) fn limit_in(dir: &str, name: &str) -> u64 {
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
