//! What an experiment sets up before it moves a byte, and undoes after:
//! the buffers, and DST's range saved in a journal before the first write.
//!
//! The saved range is held by a [`DstGuard`]: the experiment's last step
//! puts it back explicitly and reports how that went (the report's
//! `restore`); if the experiment ends any other way between the save and
//! that step (an early return, a panic), the guard's `Drop` puts it back
//! instead, so a run never leaves DST overwritten behind it. Either way the
//! range is written back once: the explicit restore takes the journal out
//! of the guard.

use std::path::Path;

use super::super::buffer::DmaBuffer;
use super::super::journal::{Journal, JournalError};
use super::super::target::Target;
use super::report::{CopyReport, Outcome, RestoreInfo, Stop};
use super::{Params, Shape, Via};

/// The buffers every run uses.
pub(super) struct Buffers {
    pub host: DmaBuffer,
    /// The P2P buffer; None with `--host` (then `host` is the main one).
    pub p2p: Option<DmaBuffer>,
    /// Where SRC and DST are read back through host memory to verify.
    pub ref_a: DmaBuffer,
    pub ref_b: DmaBuffer,
}

impl Buffers {
    /// Allocates `bytes` of each buffer (P2P memory from `via`): all of
    /// them, before anything is written.
    pub(super) fn allocate(via: &Via, bytes: usize) -> Result<Buffers, Stop> {
        let failed = |e: super::super::buffer::BufferError| Stop::error(e.errno(), e.to_string());
        let host = DmaBuffer::host(bytes).map_err(failed)?;
        let p2p = match via {
            Via::P2p { path, .. } => Some(DmaBuffer::p2pmem(path, bytes).map_err(failed)?),
            Via::Host => None,
        };
        let (Ok(ref_a), Ok(ref_b)) = (DmaBuffer::host(bytes), DmaBuffer::host(bytes)) else {
            return Err(Stop::error(
                Some(libc::ENOMEM),
                "cannot allocate host memory for verification".into(),
            ));
        };
        Ok(Buffers {
            host,
            p2p,
            ref_a,
            ref_b,
        })
    }

    /// The buffer the transfer goes through: the P2P one, or host memory
    /// with `--host`.
    pub(super) fn main(&self) -> &DmaBuffer {
        self.p2p.as_ref().unwrap_or(&self.host)
    }

    pub(super) fn is_p2p(&self) -> bool {
        self.p2p.is_some()
    }
}

/// DST's original range, saved in a journal, put back once: by
/// [`put_back`] at the end of the experiment, or by `Drop` if it never
/// gets there.
pub(super) struct DstGuard<'a> {
    dst: &'a Target,
    /// Taken by the explicit restore; `Drop` restores what is still here.
    journal: Option<Journal>,
}

impl<'a> DstGuard<'a> {
    fn save(dst: &'a Target, offset: u64, len: u64, dir: &Path) -> Result<Self, JournalError> {
        Ok(DstGuard {
            dst,
            journal: Some(Journal::save(dst, offset, len, dir)?),
        })
    }

    /// Puts the range back now: the journal's path, and how many bytes were
    /// restored or why not (then the journal stays for `p2pdoctor
    /// restore`).
    fn restore(mut self) -> Option<(std::path::PathBuf, Result<u64, JournalError>)> {
        let journal = self.journal.take()?;
        let path = journal.path.clone();
        Some((path, journal.restore(self.dst)))
    }
}

impl Drop for DstGuard<'_> {
    /// The safety net: the experiment ended before its restore step.
    fn drop(&mut self) {
        if let Some(journal) = self.journal.take()
            && let Err(e) = journal.restore(self.dst)
        {
            // Nowhere else to say it: the report is not coming.
            eprintln!("p2pdoctor: the experiment stopped early, and {e}");
        }
    }
}

/// Saves DST's range before the first write (None for a read, which
/// writes nothing).
pub(super) fn save_dst<'a>(
    shape: &'a Shape<'a>,
    p: &Params,
    dir: &Path,
) -> Result<Option<DstGuard<'a>>, Stop> {
    let Some(d) = shape.dst() else {
        return Ok(None);
    };
    DstGuard::save(d, p.dst_offset, p.size, dir)
        .map(Some)
        .map_err(|e| Stop::error(None, format!("nothing was written: {e}")))
}

/// Puts DST back and says so in the report; a failed restore makes an
/// experiment that went well an error.
pub(super) fn put_back(guard: DstGuard, rep: &mut CopyReport, dst_offset: u64) {
    let dst = guard.dst;
    let Some((journal, restored)) = guard.restore() else {
        return;
    };
    rep.restore = Some(match restored {
        Ok(n) => RestoreInfo {
            journal,
            restored: true,
            bytes: n,
            message: format!(
                "restored the original {} at offset {} of {}",
                crate::units::human_bytes(n),
                dst_offset,
                dst.path.display()
            ),
        },
        Err(e) => {
            if rep.outcome == Outcome::Ok {
                rep.outcome = Outcome::Error;
            }
            RestoreInfo {
                journal,
                restored: false,
                bytes: 0,
                message: e.to_string(),
            }
        }
    });
}
