//! Evidence given as the root instead of a tree: saved command output
//! (lspci, uname, /proc files) in a directory, or a file read whole.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The most an evidence file may hold: a paste of a large server's
/// `lspci -vvv -xxxx` is about 20 MB.
pub const MAX_EVIDENCE_BYTES: u64 = 256 << 20;

/// A directory without sysfs that holds command output instead: files
/// named after the command, as people save them (`lspci.txt`,
/// `lspci-vvv.txt`) and as sosreport does (`sos_commands/pci/lspci_-nnvv`,
/// `sos_commands/kernel/uname_-a`, `proc/cmdline`, `proc/cpuinfo`). Their
/// contents, each below a prompt naming the command, are one paste.
pub(super) fn evidence_in_dir(dir: &Path) -> Option<Vec<u8>> {
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
pub(super) fn read_bounded(r: impl Read) -> io::Result<Vec<u8>> {
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
