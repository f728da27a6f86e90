//! Kernel-log lines about P2P DMA, ACS, IOMMUs, AER and NVMe.
//!
//! Live: `/dev/kmsg`, read without blocking (one record per read). In a
//! captured tree or snapshot: the `p2pdoctor-kernel.log` file at its top.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use super::{Limitation, LimitationKind};
use crate::root::{KERNEL_LOG_FILE, SystemRoot};

/// Substrings that make a kernel-log line worth keeping.
const KEYWORDS: &[&str] = &[
    "p2p",
    "peer-to-peer",
    "ACS",
    "acs",
    "DMAR",
    "AMD-Vi",
    "IOMMU",
    "iommu",
    "IO_PAGE_FAULT",
    "AER",
    "DPC",
    "nvme",
    "whitelist",
    "pcieport",
];

/// The most recent lines kept; a long-running machine's log is not wanted
/// whole.
const MAX_LINES: usize = 5000;

pub fn is_relevant(line: &str) -> bool {
    KEYWORDS.iter().any(|k| line.contains(k))
}

pub(super) fn read_kernel_log(root: &SystemRoot, limitations: &mut Vec<Limitation>) -> Vec<String> {
    let lines = if root.is_live() {
        match read_kmsg() {
            Ok(l) => l,
            Err(e) => {
                limitations.push(Limitation {
                    kind: LimitationKind::KernelLogUnreadable,
                    message: format!(
                        "cannot read /dev/kmsg ({e}): kernel messages about P2P, ACS and IOMMU faults are not included. Run as root, or set kernel.dmesg_restrict=0"
                    ),
                });
                Vec::new()
            }
        }
    } else {
        match root.read(KERNEL_LOG_FILE) {
            Ok(b) => String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let mut kept: Vec<String> = lines.into_iter().filter(|l| is_relevant(l)).collect();
    if kept.len() > MAX_LINES {
        kept.drain(..kept.len() - MAX_LINES);
    }
    kept
}

fn read_kmsg() -> std::io::Result<Vec<String>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    read_records(&mut f)
}

/// Every record readable now from a non-blocking `/dev/kmsg` descriptor,
/// as dmesg lines (one record per read; EAGAIN is the end). An error before
/// the first record is returned; after it, what was read is kept.
pub fn read_records(f: &mut std::fs::File) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(line) = format_record(&String::from_utf8_lossy(&buf[..n])) {
                    out.push(line);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // A record overwritten while we read: skip on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if out.is_empty() {
                    return Err(e);
                }
                break;
            }
        }
    }
    Ok(out)
}

/// `6,1234,5678901,-;nvme 0000:03:00.0: message` → `[    5.678901] nvme ...`
/// (Documentation/ABI/testing/dev-kmsg). Continuation lines are dropped.
pub fn format_record(record: &str) -> Option<String> {
    let (prefix, rest) = record.split_once(';')?;
    let message = rest.lines().next()?.to_string();
    let usec: u64 = prefix.split(',').nth(2)?.parse().ok()?;
    Some(format!(
        "[{:5}.{:06}] {}",
        usec / 1_000_000,
        usec % 1_000_000,
        message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmsg_record_to_dmesg_line() {
        assert_eq!(
            format_record(
                "4,512,5123456,-;pci 0000:00:03.0: ACS redirect is set\n SUBSYSTEM=pci\n"
            )
            .as_deref(),
            Some("[    5.123456] pci 0000:00:03.0: ACS redirect is set")
        );
        assert_eq!(format_record("garbage"), None);
    }

    #[test]
    fn keeps_p2p_lines_only() {
        assert!(is_relevant(
            "nvme 0000:01:00.0: cannot be used for peer-to-peer DMA"
        ));
        assert!(is_relevant(
            "DMAR: [DMA Write NO_PASID] Request device [01:00.0]"
        ));
        assert!(!is_relevant("usb 1-1: new high-speed USB device"));
    }
}
