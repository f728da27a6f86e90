//! One experiment: move a range between a device and a buffer (P2P memory
//! or host memory), time it, and verify every byte.
//!
//! Three shapes, the DMA master always being the block device's controller:
//! - read:  SRC → buffer (the device writes into the provider's memory);
//! - write: buffer → DST (the device reads the provider's memory);
//! - copy:  SRC → buffer → DST (p2pmem-test's job).
//!
//! Untouched memory is caught: the buffer (and DST) are filled with a
//! pattern first, and a byte that still holds it after the transfer is
//! counted as never arrived.
//!
//! The parts: `report` (what the experiment says, serialised as is),
//! `setup` (the buffers, and DST saved before the first write, put back
//! by a guard however the experiment ends), `runs` (the repetitions, each
//! a baseline, a fill, the main pass and the check), `verify` (every byte
//! compared against a reference read through host memory).

mod report;
mod runs;
mod setup;
#[cfg(test)]
mod tests;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::buffer::BufferKind;
use super::engine::EngineKind;
use super::kmsg::KmsgWatch;
use super::target::Target;

pub use report::{
    CopyReport, EndpointInfo, FailureInfo, Outcome, ParamsInfo, PassReport, RestoreInfo, RunReport,
    ViaInfo,
};

/// How the transfer runs.
#[derive(Debug, Clone)]
pub struct Params {
    pub chunk: usize,
    pub qd: usize,
    pub engine: EngineKind,
    /// Bytes of the range.
    pub size: u64,
    /// Cycle over the range for this long instead of once.
    pub duration: Option<Duration>,
    pub src_offset: u64,
    pub dst_offset: u64,
    pub repeat: u32,
    pub verify: bool,
    /// Also time the same transfer through host memory.
    pub baseline: bool,
    pub progress: bool,
}

/// Where the data passes.
#[derive(Debug, Clone)]
pub enum Via {
    /// A p2pmem allocate file (or a stand-in file).
    P2p { path: PathBuf, bdf: Option<String> },
    /// Host memory only: the bounce baseline by itself.
    Host,
}

impl Via {
    /// What memory the transfer goes through.
    pub fn kind(&self) -> BufferKind {
        match self {
            Via::P2p { path, .. } => BufferKind::of_file(path),
            Via::Host => BufferKind::Host,
        }
    }
}

/// What to move.
pub enum Shape<'a> {
    Read { src: &'a Target },
    Write { dst: &'a Target },
    Copy { src: &'a Target, dst: &'a Target },
}

impl Shape<'_> {
    fn src(&self) -> Option<&Target> {
        match self {
            Shape::Read { src } | Shape::Copy { src, .. } => Some(src),
            Shape::Write { .. } => None,
        }
    }
    fn dst(&self) -> Option<&Target> {
        match self {
            Shape::Write { dst } | Shape::Copy { dst, .. } => Some(dst),
            Shape::Read { .. } => None,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Shape::Read { .. } => "read",
            Shape::Write { .. } => "write",
            Shape::Copy { .. } => "copy",
        }
    }
}

/// Runs an experiment. `journal_dir` is where DST's original data is kept
/// while it is overwritten. Never panics on I/O trouble: everything ends up
/// in the report.
pub fn run(shape: &Shape, via: &Via, p: &Params, journal_dir: &Path) -> CopyReport {
    let mut kmsg = KmsgWatch::start();
    let mut rep = report::start(shape, via, p, kmsg.unavailable());
    // buffers first: nothing is written before we know we can go on
    let bufs = match setup::Buffers::allocate(via, p.qd * p.chunk) {
        Ok(b) => b,
        Err(stop) => return finish(stop.ends(rep), &mut kmsg),
    };
    // save DST before the first write; from here the guard puts it back
    // however this ends
    let guard = match setup::save_dst(shape, p, journal_dir) {
        Ok(g) => g,
        Err(stop) => return finish(stop.ends(rep), &mut kmsg),
    };
    let totals = runs::repeat(shape, p, &bufs, &mut rep);
    #[cfg(test)]
    tests::fault::after_the_writes();
    runs::summarize(&mut rep, totals, shape, p, bufs.is_p2p());
    if let Some(guard) = guard {
        setup::put_back(guard, &mut rep, p.dst_offset);
    }
    report::conclude(&mut rep);
    finish(rep, &mut kmsg)
}

/// The report, with what the kernel logged meanwhile.
fn finish(mut rep: CopyReport, kmsg: &mut KmsgWatch) -> CopyReport {
    rep.kernel_log = kmsg.collect();
    rep
}
