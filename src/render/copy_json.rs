//! `copy --format json`: one experiment's report, the public, versioned
//! form (`schema/copy.schema.json` describes it).
//!
//! Wire structs borrowed from the [`CopyReport`], field by field in document
//! order, so the document's shape is written here and not by the
//! experiment's own types. Leaf values (the enums, a byte comparison) keep
//! their one serialized form, shared with check's `confirm` rows.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::ToolBlock;
use crate::confirm::buffer::{BufferKind, Comparison};
use crate::confirm::copy::{
    CopyReport, EndpointInfo, FailureInfo, Outcome, PassReport, RestoreInfo, RunReport,
};
use crate::confirm::engine::{EngineKind, LatencySummary};
use crate::confirm::target::TargetKind;

/// The JSON schema version of `copy --format json` (schema/copy.schema.json).
pub const COPY_SCHEMA_VERSION: u32 = 1;

/// The whole document.
#[derive(Serialize)]
struct CopyJson<'a> {
    schema_version: u32,
    tool: ToolBlock,
    mode: &'a str,
    src: Option<EndpointJson<'a>>,
    dst: Option<EndpointJson<'a>>,
    via: ViaJson<'a>,
    params: ParamsJson,
    outcome: Outcome,
    errno: Option<i32>,
    errno_name: Option<&'a str>,
    message: &'a str,
    runs: Vec<RunJson<'a>>,
    main: Option<PassJson<'a>>,
    baseline: Option<PassJson<'a>>,
    ratio: Option<f64>,
    verify: Option<Comparison>,
    kernel_log: &'a [String],
    kernel_log_unavailable: Option<&'a str>,
    restore: Option<RestoreJson<'a>>,
    notes: &'a [String],
}

/// `src`, `dst`.
#[derive(Serialize)]
struct EndpointJson<'a> {
    path: Cow<'a, str>,
    kind: TargetKind,
    size: u64,
    offset: u64,
}

/// `via`: the memory the data went through.
#[derive(Serialize)]
struct ViaJson<'a> {
    kind: BufferKind,
    path: Option<Cow<'a, str>>,
    bdf: Option<&'a str>,
    buffer_bytes: usize,
}

/// `params`: how the transfer ran.
#[derive(Serialize)]
struct ParamsJson {
    chunk: usize,
    qd: usize,
    engine: EngineKind,
    size: u64,
    duration_s: Option<f64>,
    repeat: u32,
    verify: bool,
    baseline: bool,
}

/// `runs[]`: one repetition.
#[derive(Serialize)]
struct RunJson<'a> {
    main: Option<PassJson<'a>>,
    baseline: Option<PassJson<'a>>,
    verify: Option<Comparison>,
}

/// A timed pass (`main`, `baseline`, and each run's).
#[derive(Serialize)]
struct PassJson<'a> {
    bytes: u64,
    seconds: f64,
    gbps: f64,
    iops: f64,
    latency_us: Option<LatencyJson>,
    failure: Option<FailureJson<'a>>,
}

/// `latency_us`: percentiles in microseconds.
#[derive(Serialize)]
struct LatencyJson {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// A pass's `failure`.
#[derive(Serialize)]
struct FailureJson<'a> {
    stage: &'a str,
    offset: u64,
    len: usize,
    errno: Option<i32>,
    short: Option<usize>,
    errno_name: Option<&'a str>,
    message: &'a str,
}

/// `restore`: what happened to DST's original contents.
#[derive(Serialize)]
struct RestoreJson<'a> {
    journal: Cow<'a, str>,
    restored: bool,
    bytes: u64,
    message: &'a str,
}

/// A path as text; a name that is not UTF-8 is written with U+FFFD in
/// place of its odd bytes rather than failing the document.
fn path(p: &Path) -> Cow<'_, str> {
    p.to_string_lossy()
}

fn endpoint(e: &EndpointInfo) -> EndpointJson<'_> {
    EndpointJson {
        path: path(&e.path),
        kind: e.kind,
        size: e.size,
        offset: e.offset,
    }
}

fn pass(p: &PassReport) -> PassJson<'_> {
    PassJson {
        bytes: p.bytes,
        seconds: p.seconds,
        gbps: p.gbps,
        iops: p.iops,
        latency_us: p.latency_us.as_ref().map(latency),
        failure: p.failure.as_ref().map(failure),
    }
}

fn latency(l: &LatencySummary) -> LatencyJson {
    LatencyJson {
        p50: l.p50,
        p90: l.p90,
        p99: l.p99,
        p999: l.p999,
        max: l.max,
    }
}

fn failure(f: &FailureInfo) -> FailureJson<'_> {
    FailureJson {
        stage: &f.io.stage,
        offset: f.io.offset,
        len: f.io.len,
        errno: f.io.errno,
        short: f.io.short,
        errno_name: f.errno_name,
        message: &f.message,
    }
}

fn run(r: &RunReport) -> RunJson<'_> {
    RunJson {
        main: r.main.as_ref().map(pass),
        baseline: r.baseline.as_ref().map(pass),
        verify: r.verify,
    }
}

fn restore(r: &RestoreInfo) -> RestoreJson<'_> {
    RestoreJson {
        journal: path(&r.journal),
        restored: r.restored,
        bytes: r.bytes,
        message: &r.message,
    }
}

fn copy_json(r: &CopyReport) -> CopyJson<'_> {
    let p = &r.params;
    CopyJson {
        schema_version: COPY_SCHEMA_VERSION,
        tool: ToolBlock::THIS,
        mode: r.mode,
        src: r.src.as_ref().map(endpoint),
        dst: r.dst.as_ref().map(endpoint),
        via: ViaJson {
            kind: r.via.kind,
            path: r.via.path.as_deref().map(path),
            bdf: r.via.bdf.as_deref(),
            buffer_bytes: r.via.buffer_bytes,
        },
        params: ParamsJson {
            chunk: p.chunk,
            qd: p.qd,
            engine: p.engine,
            size: p.size,
            duration_s: p.duration_s,
            repeat: p.repeat,
            verify: p.verify,
            baseline: p.baseline,
        },
        outcome: r.outcome,
        errno: r.errno,
        errno_name: r.errno_name,
        message: &r.message,
        runs: r.runs.iter().map(run).collect(),
        main: r.main.as_ref().map(pass),
        baseline: r.baseline.as_ref().map(pass),
        ratio: r.ratio,
        verify: r.verify,
        kernel_log: &r.kernel_log,
        kernel_log_unavailable: r.kernel_log_unavailable.as_deref(),
        restore: r.restore.as_ref().map(restore),
        notes: &r.notes,
    }
}

/// Writes the report as pretty JSON, with a final newline.
pub fn render(r: &CopyReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &copy_json(r)).map_err(io::Error::other)?;
    writeln!(out)
}
