//! The kernel-log lines that appear while a transfer runs: ACS redirect,
//! "not whitelisted", DMAR/AMD-Vi faults, AER.

use std::fs::File;
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
                // SEEK_END on kmsg moves past every record already logged.
                let _ = std::io::Seek::seek(&mut &f, std::io::SeekFrom::End(0));
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
        crate::scan::kmsg::read_records(f)
            .unwrap_or_default()
            .into_iter()
            .filter(|l| crate::scan::kmsg::is_relevant(l))
            .collect()
    }
}
