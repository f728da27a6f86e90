//! The kernel-log lines that appear while a transfer runs: ACS redirect,
//! "not whitelisted", DMAR/AMD-Vi faults, AER.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// Reads `/dev/kmsg` from the moment it was opened.
pub struct KmsgWatch {
    file: Option<File>,
    why_not: Option<String>,
}

impl KmsgWatch {
    /// Opens `/dev/kmsg` and skips what is already there.
    pub fn start() -> Self {
        Self::start_at("/dev/kmsg")
    }

    pub fn start_at(path: &str) -> Self {
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => {
                // SAFETY: lseek on an open descriptor; SEEK_END on kmsg
                // moves past every record already logged.
                unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
                KmsgWatch {
                    file: Some(f),
                    why_not: None,
                }
            }
            Err(e) => KmsgWatch {
                file: None,
                why_not: Some(format!(
                    "the kernel log ({path}) cannot be read: {e}; run as root to see what the kernel said during the copy"
                )),
            },
        }
    }

    /// Why the log is not watched, if it is not.
    pub fn unavailable(&self) -> Option<&str> {
        self.why_not.as_deref()
    }

    /// The relevant lines logged since the start (or the last call).
    pub fn collect(&mut self) -> Vec<String> {
        let Some(f) = self.file.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    if let Some(line) = crate::scan::kmsg::format_record(&rec)
                        && crate::scan::kmsg::is_relevant(&line)
                    {
                        out.push(line);
                    }
                }
                // EPIPE: records were overwritten before we read them
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        out
    }
}
