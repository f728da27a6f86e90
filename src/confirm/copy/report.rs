//! What an experiment says: the report and its parts (serialised as they
//! are: `copy --format json` and `check --confirm` print them), the report
//! an experiment starts from, and the line it ends with.

use std::path::PathBuf;

use serde::Serialize;

use super::super::buffer::{BufferKind, Comparison};
use super::super::engine::{self, EngineKind, IoFailure, LatencySummary, PassResult, errno_name};
use super::super::target::TargetKind;
use super::{Params, Shape, Via};

/// The end of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Moved and verified.
    Ok,
    /// The kernel refused the P2P transfer (an errno) while host memory worked.
    Refused,
    /// The transfer reported success but the data is wrong or missing.
    Mismatch,
    /// Something else failed (the device itself, a buffer, a journal).
    Error,
    /// Stopped by a signal; what was written has been restored.
    Interrupted,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Mismatch => "mismatch",
            Outcome::Error => "error",
            Outcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointInfo {
    pub path: PathBuf,
    pub kind: TargetKind,
    pub size: u64,
    pub offset: u64,
}

#[derive(Debug, Clone)]
pub struct ViaInfo {
    pub kind: BufferKind,
    pub path: Option<PathBuf>,
    pub bdf: Option<String>,
    pub buffer_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct ParamsInfo {
    pub chunk: usize,
    pub qd: usize,
    pub engine: EngineKind,
    pub size: u64,
    pub duration_s: Option<f64>,
    pub repeat: u32,
    pub verify: bool,
    pub baseline: bool,
}

/// A failure, with the errno's name.
#[derive(Debug, Clone)]
pub struct FailureInfo {
    pub io: IoFailure,
    pub errno_name: Option<&'static str>,
    pub message: String,
}

impl From<&IoFailure> for FailureInfo {
    fn from(f: &IoFailure) -> Self {
        FailureInfo {
            io: f.clone(),
            errno_name: f.errno.map(errno_name),
            message: f.describe(),
        }
    }
}

/// One timed pass.
#[derive(Debug, Clone)]
pub struct PassReport {
    pub bytes: u64,
    pub seconds: f64,
    /// 10^9 bytes per second.
    pub gbps: f64,
    /// Requests per second (each stage of a chunk is one request).
    pub iops: f64,
    pub latency_us: Option<LatencySummary>,
    pub failure: Option<FailureInfo>,
}

impl PassReport {
    pub(super) fn of(r: &mut PassResult) -> PassReport {
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        PassReport {
            bytes: r.bytes,
            seconds: r.elapsed.as_secs_f64(),
            gbps: crate::units::gbytes_per_s(r.bytes, secs),
            iops: r.latencies_ns.len() as f64 / secs,
            latency_us: LatencySummary::of(&mut r.latencies_ns),
            failure: r.failure.as_ref().map(FailureInfo::from),
        }
    }
}

/// One repetition.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Through the P2P buffer (or host memory with `--host`).
    pub main: Option<PassReport>,
    /// Through host memory, for the ratio.
    pub baseline: Option<PassReport>,
    pub verify: Option<Comparison>,
}

/// What happened to DST's original contents.
#[derive(Debug, Clone)]
pub struct RestoreInfo {
    pub journal: PathBuf,
    pub restored: bool,
    pub bytes: u64,
    pub message: String,
}

/// The whole experiment.
#[derive(Debug, Clone)]
pub struct CopyReport {
    pub mode: &'static str,
    pub src: Option<EndpointInfo>,
    pub dst: Option<EndpointInfo>,
    pub via: ViaInfo,
    pub params: ParamsInfo,
    pub outcome: Outcome,
    pub errno: Option<i32>,
    pub errno_name: Option<&'static str>,
    /// One line for people.
    pub message: String,
    pub runs: Vec<RunReport>,
    /// All runs together.
    pub main: Option<PassReport>,
    pub baseline: Option<PassReport>,
    /// main / baseline throughput.
    pub ratio: Option<f64>,
    pub verify: Option<Comparison>,
    pub kernel_log: Vec<String>,
    pub kernel_log_unavailable: Option<String>,
    pub restore: Option<RestoreInfo>,
    pub notes: Vec<String>,
}

/// The report an experiment starts from: what it moves, through what and
/// how; no outcome yet but `ok`. (`kmsg_unavailable`: why the kernel log
/// cannot be watched, if it cannot.)
pub(super) fn start(
    shape: &Shape,
    via: &Via,
    p: &Params,
    kmsg_unavailable: Option<&str>,
) -> CopyReport {
    let buf_bytes = p.qd * p.chunk;
    CopyReport {
        mode: shape.name(),
        src: shape.src().map(|t| EndpointInfo {
            path: t.path.clone(),
            kind: t.kind,
            size: t.size,
            offset: p.src_offset,
        }),
        dst: shape.dst().map(|t| EndpointInfo {
            path: t.path.clone(),
            kind: t.kind,
            size: t.size,
            offset: p.dst_offset,
        }),
        via: match via {
            Via::P2p { path, bdf } => ViaInfo {
                kind: via.kind(),
                path: Some(path.clone()),
                bdf: bdf.clone(),
                buffer_bytes: buf_bytes,
            },
            Via::Host => ViaInfo {
                kind: BufferKind::Host,
                path: None,
                bdf: None,
                buffer_bytes: buf_bytes,
            },
        },
        params: ParamsInfo {
            chunk: p.chunk,
            qd: p.qd,
            engine: if p.engine == EngineKind::Uring && !engine::uring_available() {
                EngineKind::Threads
            } else {
                p.engine
            },
            size: p.size,
            duration_s: p.duration.map(|d| d.as_secs_f64()),
            repeat: p.repeat,
            verify: p.verify,
            baseline: p.baseline && matches!(via, Via::P2p { .. }),
        },
        outcome: Outcome::Ok,
        errno: None,
        errno_name: None,
        message: String::new(),
        runs: Vec::new(),
        main: None,
        baseline: None,
        ratio: None,
        verify: None,
        kernel_log: Vec::new(),
        kernel_log_unavailable: kmsg_unavailable.map(str::to_string),
        restore: None,
        notes: Vec::new(),
    }
}

impl CopyReport {
    /// Ends the experiment with `outcome`: its errno and the line for
    /// people.
    pub(super) fn fail(&mut self, outcome: Outcome, errno: Option<i32>, message: String) {
        self.outcome = outcome;
        self.errno = errno;
        self.errno_name = errno.map(errno_name);
        self.message = message;
    }
}

/// All passes as one: bytes and time summed, latencies pooled, the first
/// failure kept.
pub(super) fn aggregate(passes: &mut [PassResult]) -> Option<PassReport> {
    if passes.is_empty() {
        return None;
    }
    let mut all = PassResult::default();
    for p in passes.iter_mut() {
        all.bytes += p.bytes;
        all.elapsed += p.elapsed;
        all.latencies_ns.append(&mut p.latencies_ns);
        if all.failure.is_none() {
            all.failure = p.failure.clone();
        }
    }
    Some(PassReport::of(&mut all))
}

/// The line for people, once an experiment ended well: how much moved, how
/// fast, and how much of it was verified.
pub(super) fn conclude(rep: &mut CopyReport) {
    if rep.outcome != Outcome::Ok {
        return;
    }
    rep.message = match (&rep.main, rep.verify) {
        (Some(m), Some(v)) => format!(
            "{} moved at {} and all {} verified bytes match",
            crate::units::human_bytes(m.bytes),
            crate::units::rate(m.gbps),
            v.bytes_compared
        ),
        (Some(m), None) => format!(
            "{} moved at {} (not verified)",
            crate::units::human_bytes(m.bytes),
            crate::units::rate(m.gbps)
        ),
        _ => "nothing moved".into(),
    };
}

/// Why an experiment stopped early (the report's outcome, errno and
/// message).
pub(super) struct Stop {
    pub outcome: Outcome,
    pub errno: Option<i32>,
    pub message: String,
}

impl Stop {
    pub(super) fn error(errno: Option<i32>, message: String) -> Stop {
        Stop {
            outcome: Outcome::Error,
            errno,
            message,
        }
    }

    /// The report, ended by this.
    pub(super) fn ends(self, mut rep: CopyReport) -> CopyReport {
        rep.fail(self.outcome, self.errno, self.message);
        rep
    }
}
