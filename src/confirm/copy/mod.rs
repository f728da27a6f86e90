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

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::buffer::{
    BufferKind, Comparison, DmaBuffer, compare, count_pattern_where_differs, fill_pattern,
};
use super::engine::{
    self, EngineKind, IoFailure, Job, LatencySummary, Limit, PassResult, Stage, errno_name,
};
use super::journal::Journal;
use super::kmsg::KmsgWatch;
use super::progress::{Bar, Goal};
use super::target::{Target, TargetKind};

/// The JSON schema version of `copy --format json`.
pub const COPY_SCHEMA_VERSION: u32 = 1;

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

#[derive(Debug, Clone, Serialize)]
pub struct EndpointInfo {
    pub path: PathBuf,
    pub kind: TargetKind,
    pub size: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViaInfo {
    pub kind: BufferKind,
    pub path: Option<PathBuf>,
    pub bdf: Option<String>,
    pub buffer_bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct FailureInfo {
    #[serde(flatten)]
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
#[derive(Debug, Clone, Serialize)]
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
    fn of(r: &mut PassResult) -> PassReport {
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
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Through the P2P buffer (or host memory with `--host`).
    pub main: Option<PassReport>,
    /// Through host memory, for the ratio.
    pub baseline: Option<PassReport>,
    pub verify: Option<Comparison>,
}

/// What happened to DST's original contents.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreInfo {
    pub journal: PathBuf,
    pub restored: bool,
    pub bytes: u64,
    pub message: String,
}

/// The whole experiment.
#[derive(Debug, Clone, Serialize)]
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

/// Fills every `chunk`-sized slot of `buf[..len]` with the same pattern,
/// so a byte's pattern value depends only on its offset modulo `chunk`.
fn fill_slots(buf: &DmaBuffer, len: usize, pat: &[u8]) {
    for off in (0..len).step_by(pat.len()) {
        let n = pat.len().min(len - off);
        // SAFETY: called between passes: no I/O in flight, no slice alive.
        unsafe { buf.slice_mut(off, n) }.copy_from_slice(&pat[..n]);
    }
}

/// The pattern expected at device offsets `[base, base+len)` of a range
/// filled slot by slot from `range_start`.
fn pattern_window(pat: &[u8], rel_start: u64, len: usize) -> Vec<u8> {
    let c = pat.len() as u64;
    (0..len as u64)
        .map(|i| pat[((rel_start + i) % c) as usize])
        .collect()
}

fn seed(run: u32, what: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
        ^ ((run as u64) << 8)
        ^ what.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

struct Ctx<'a> {
    shape: &'a Shape<'a>,
    p: &'a Params,
    bar_label: String,
}

/// Reading or writing `t` from byte `base` on (`read /dev/nvme1n1`).
fn stage(t: &Target, write: bool, base: u64) -> Stage<'_> {
    Stage {
        fd: t.fd(),
        write,
        base,
        label: format!(
            "{} {}",
            if write { "write" } else { "read" },
            t.path.display()
        ),
    }
}

impl Ctx<'_> {
    fn stages(&self) -> Vec<Stage<'_>> {
        let mut v = Vec::new();
        if let Some(s) = self.shape.src() {
            v.push(stage(s, false, self.p.src_offset));
        }
        if let Some(d) = self.shape.dst() {
            v.push(stage(d, true, self.p.dst_offset));
        }
        v
    }

    fn pass(&self, buf: &DmaBuffer, what: &str) -> std::io::Result<PassResult> {
        let p = self.p;
        let limit = match p.duration {
            Some(d) => Limit::For(d),
            None => Limit::Once,
        };
        let job = Job {
            stages: self.stages(),
            buf,
            buf_offset: 0,
            slots: buf.len() / p.chunk,
            chunk: p.chunk,
            range: p.size,
            limit,
            qd: p.qd,
        };
        let goal = match p.duration {
            Some(d) => Goal::Time(d),
            None => Goal::Bytes(p.size),
        };
        let bar = Bar::new(&format!("{} {what}", self.bar_label), goal, p.progress);
        let r = engine::run(&job, p.engine, Some(&|b| bar.update(b)));
        bar.finish();
        r
    }

    /// Writes `pat` slot by slot over DST's range with host writes.
    fn prefill_dst(&self, host: &DmaBuffer, pat: &[u8]) -> std::io::Result<Option<IoFailure>> {
        let Some(d) = self.shape.dst() else {
            return Ok(None);
        };
        fill_slots(host, host.len(), pat);
        let job = Job {
            stages: vec![stage(d, true, self.p.dst_offset)],
            buf: host,
            buf_offset: 0,
            slots: host.len() / self.p.chunk,
            chunk: self.p.chunk,
            range: self.p.size,
            limit: Limit::Once,
            qd: self.p.qd,
        };
        Ok(engine::run(&job, self.p.engine, None)?.failure)
    }

    /// Reads `[rel, rel+len)` of a target into `buf[..len]` (host path).
    fn read_window(
        &self,
        t: &Target,
        base: u64,
        rel: u64,
        len: usize,
        buf: &DmaBuffer,
    ) -> std::io::Result<PassResult> {
        let slots = len.div_ceil(self.p.chunk);
        let job = Job {
            stages: vec![stage(t, false, base + rel)],
            buf,
            buf_offset: 0,
            slots,
            chunk: self.p.chunk,
            range: len as u64,
            limit: Limit::Once,
            qd: self.p.qd.min(slots),
        };
        engine::run(&job, self.p.engine, None)
    }
}

/// Runs an experiment. `journal_dir` is where DST's original data is kept
/// while it is overwritten. Never panics on I/O trouble: everything ends up
/// in the report.
pub fn run(shape: &Shape, via: &Via, p: &Params, journal_dir: &Path) -> CopyReport {
    let mut kmsg = KmsgWatch::start();
    let buf_bytes = p.qd * p.chunk;
    let mut rep = CopyReport {
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
        kernel_log_unavailable: kmsg.unavailable().map(str::to_string),
        restore: None,
        notes: Vec::new(),
    };
    let ctx = Ctx {
        shape,
        p,
        bar_label: shape.name().to_string(),
    };

    let fail = |rep: &mut CopyReport, outcome: Outcome, errno: Option<i32>, msg: String| {
        rep.outcome = outcome;
        rep.errno = errno;
        rep.errno_name = errno.map(errno_name);
        rep.message = msg;
    };

    // buffers first: nothing is written before we know we can go on
    let host = match DmaBuffer::host(buf_bytes) {
        Ok(b) => b,
        Err(e) => {
            fail(&mut rep, Outcome::Error, e.errno(), e.to_string());
            return finish(rep, &mut kmsg);
        }
    };
    let main_buf = match via {
        Via::P2p { path, .. } => match DmaBuffer::p2pmem(path, buf_bytes) {
            Ok(b) => Some(b),
            Err(e) => {
                fail(&mut rep, Outcome::Error, e.errno(), e.to_string());
                return finish(rep, &mut kmsg);
            }
        },
        Via::Host => None,
    };
    let main = main_buf.as_ref().unwrap_or(&host);
    let ref_a = DmaBuffer::host(buf_bytes);
    let ref_b = DmaBuffer::host(buf_bytes);
    let (Ok(ref_a), Ok(ref_b)) = (ref_a, ref_b) else {
        fail(
            &mut rep,
            Outcome::Error,
            Some(libc::ENOMEM),
            "cannot allocate host memory for verification".into(),
        );
        return finish(rep, &mut kmsg);
    };

    // save DST before the first write
    let mut journal = None;
    if let Some(d) = shape.dst() {
        match Journal::save(d, p.dst_offset, p.size, journal_dir) {
            Ok(j) => journal = Some(j),
            Err(e) => {
                fail(
                    &mut rep,
                    Outcome::Error,
                    None,
                    format!("nothing was written: {e}"),
                );
                return finish(rep, &mut kmsg);
            }
        }
    }

    let bufs = Buffers {
        host: &host,
        main,
        p2p: main_buf.is_some(),
        ref_a: &ref_a,
        ref_b: &ref_b,
    };
    let mut totals = Totals::default();
    for run in 0..p.repeat.max(1) {
        let mut rr = RunReport {
            main: None,
            baseline: None,
            verify: None,
        };
        let end = one_run(&ctx, &bufs, run, rep.params.baseline, &mut rr, &mut totals);
        rep.runs.push(rr);
        match end {
            Ok(()) if !super::signal::interrupted() => {}
            Ok(()) | Err(None) => break,
            Err(Some(stop)) => {
                fail(&mut rep, stop.outcome, stop.errno, stop.message);
                break;
            }
        }
    }
    let Totals {
        main: mut all_main,
        base: mut all_base,
        verify: total_verify,
    } = totals;
    if super::signal::interrupted() && rep.outcome == Outcome::Ok {
        fail(
            &mut rep,
            Outcome::Interrupted,
            Some(libc::EINTR),
            "interrupted".into(),
        );
    }
    if !p.verify {
        rep.notes
            .push("not verified (--no-verify): throughput only".into());
    } else if matches!(shape, Shape::Read { .. }) && main_buf.is_none() {
        rep.notes
            .push("a read into host memory is its own reference: nothing to verify against".into());
    }
    rep.main = aggregate(&mut all_main);
    rep.baseline = aggregate(&mut all_base);
    rep.ratio = match (&rep.main, &rep.baseline) {
        (Some(m), Some(b)) if b.gbps > 0.0 && m.failure.is_none() => Some(m.gbps / b.gbps),
        _ => None,
    };
    rep.verify = total_verify;

    // 5. put DST back
    if let (Some(j), Some(d)) = (journal, shape.dst()) {
        let path = j.path.clone();
        rep.restore = Some(match j.restore(d) {
            Ok(n) => RestoreInfo {
                journal: path,
                restored: true,
                bytes: n,
                message: format!(
                    "restored the original {} at offset {} of {}",
                    crate::units::human_bytes(n),
                    p.dst_offset,
                    d.path.display()
                ),
            },
            Err(e) => {
                if rep.outcome == Outcome::Ok {
                    rep.outcome = Outcome::Error;
                }
                RestoreInfo {
                    journal: path,
                    restored: false,
                    bytes: 0,
                    message: e.to_string(),
                }
            }
        });
    }
    if rep.outcome == Outcome::Ok {
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
                m.gbps
            ),
            _ => "nothing moved".into(),
        };
    }
    finish(rep, &mut kmsg)
}

/// Why a run stopped early (the report's outcome, errno and message).
struct Stop {
    outcome: Outcome,
    errno: Option<i32>,
    message: String,
}

impl Stop {
    fn error(errno: Option<i32>, message: String) -> Option<Stop> {
        Some(Stop {
            outcome: Outcome::Error,
            errno,
            message,
        })
    }

    fn engine(e: std::io::Error) -> Option<Stop> {
        Stop::error(e.raw_os_error(), format!("the I/O engine failed: {e}"))
    }
}

/// `Err(None)`: interrupted, nothing failed.
type RunEnd = Result<(), Option<Stop>>;

/// The buffers every run uses.
struct Buffers<'a> {
    host: &'a DmaBuffer,
    /// The P2P buffer, or `host` with `--host`.
    main: &'a DmaBuffer,
    p2p: bool,
    ref_a: &'a DmaBuffer,
    ref_b: &'a DmaBuffer,
}

/// What the runs add up to.
#[derive(Default)]
struct Totals {
    main: Vec<PassResult>,
    base: Vec<PassResult>,
    verify: Option<Comparison>,
}

/// One repetition: the host baseline, DST's fill, the main pass, and the
/// verification, stopping at the first failure.
fn one_run(
    ctx: &Ctx,
    b: &Buffers,
    run: u32,
    baseline: bool,
    rr: &mut RunReport,
    totals: &mut Totals,
) -> RunEnd {
    let p = ctx.p;
    let pattern = |what| {
        let mut v = vec![0u8; p.chunk];
        fill_pattern(&mut v, seed(run, what));
        v
    };
    let (pat, dst_pat) = (pattern(1), pattern(2));
    // 1. host baseline
    if baseline {
        fill_slots(b.host, b.host.len(), &pat);
        let mut r = ctx.pass(b.host, "host").map_err(Stop::engine)?;
        rr.baseline = Some(PassReport::of(&mut r));
        let (failed, interrupted) = (r.failure.clone(), r.interrupted);
        totals.base.push(r);
        if let Some(f) = failed {
            return Err(Stop::error(
                f.errno,
                format!(
                    "the transfer fails through host memory too, so the device or file is at fault, not P2P: {}",
                    f.describe()
                ),
            ));
        }
        if interrupted {
            return Err(None);
        }
    }
    // 2. DST holds a pattern, so a write that never lands is seen
    if let Some(f) = ctx.prefill_dst(b.host, &dst_pat).map_err(Stop::engine)? {
        return Err(Stop::error(
            f.errno,
            format!("preparing the destination failed: {}", f.describe()),
        ));
    }
    // 3. the main pass
    fill_slots(b.main, b.main.len(), &pat);
    let mut r = ctx
        .pass(b.main, if b.p2p { "p2p" } else { "host" })
        .map_err(Stop::engine)?;
    rr.main = Some(PassReport::of(&mut r));
    let (moved, failure, interrupted) = (r.bytes, r.failure.clone(), r.interrupted);
    totals.main.push(r);
    if let Some(f) = failure {
        let baseline_ok = rr.baseline.as_ref().is_some_and(|x| x.failure.is_none());
        let outcome = if f.errno.is_some() && (baseline_ok || b.p2p) {
            Outcome::Refused
        } else {
            Outcome::Error
        };
        return Err(Some(Stop {
            outcome,
            errno: f.errno,
            message: f.describe(),
        }));
    }
    if interrupted {
        return Err(None);
    }
    // 4. verify every byte
    if !p.verify {
        return Ok(());
    }
    let covered = if p.duration.is_some() {
        moved.min(p.size)
    } else {
        p.size
    };
    let c = verify(
        ctx, b.main, b.p2p, b.ref_a, b.ref_b, &pat, &dst_pat, covered,
    )
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::Interrupted {
            None // Ctrl-C: nothing to conclude from a partial window
        } else {
            Stop::error(
                e.raw_os_error(),
                format!("reading back for verification failed: {e}"),
            )
        }
    })?;
    let Some(c) = c else { return Ok(()) };
    rr.verify = Some(c);
    totals.verify.get_or_insert_with(Comparison::default).add(c);
    if c.matches() {
        return Ok(());
    }
    Err(Some(Stop {
        outcome: Outcome::Mismatch,
        errno: None,
        message: format!(
            "the transfer reported success but {} of {} bytes differ, the first at offset {}{}",
            c.bytes_differ,
            c.bytes_compared,
            c.first_mismatch.unwrap_or(0),
            mismatch_cause(&c),
        ),
    }))
}

/// What the differing bytes say about where the data went missing. Most
/// of them holding one of the fill patterns tells which leg failed (a
/// handful matching by chance, 1 in 256, says nothing).
fn mismatch_cause(c: &Comparison) -> String {
    let most = |n: u64| n * 10 >= c.bytes_differ * 9;
    if most(c.stale_buffer) {
        "; they hold the P2P buffer's fill pattern: what was read from SRC never reached the P2P memory".into()
    } else if c.untouched == c.bytes_differ {
        "; every one of them still holds the fill pattern: the data never arrived".into()
    } else if most(c.untouched) {
        format!(
            "; {} of them still hold the fill pattern: the data never arrived",
            c.untouched
        )
    } else if c.untouched > 0 || c.stale_buffer > 0 {
        format!(
            "; {} still hold the fill pattern, {} the P2P buffer's: the rest arrived wrong",
            c.untouched, c.stale_buffer
        )
    } else {
        "; the data arrived wrong (no byte holds a fill pattern)".into()
    }
}

fn finish(mut rep: CopyReport, kmsg: &mut KmsgWatch) -> CopyReport {
    rep.kernel_log = kmsg.collect();
    rep
}

fn aggregate(passes: &mut [PassResult]) -> Option<PassReport> {
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

/// A verification read that failed, or was cut short by Ctrl-C (then the
/// error kind is `Interrupted`: a partial window is not compared).
fn window_done(r: &PassResult, len: usize) -> std::io::Result<()> {
    if let Some(f) = &r.failure {
        return Err(std::io::Error::other(f.describe()));
    }
    if r.interrupted || r.bytes != len as u64 {
        return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
    }
    Ok(())
}

/// Compares every byte of the range that moved. Windows of the buffer's
/// size; the reference is always read through host memory.
#[allow(clippy::too_many_arguments)]
fn verify(
    ctx: &Ctx,
    main: &DmaBuffer,
    p2p: bool,
    ref_a: &DmaBuffer,
    ref_b: &DmaBuffer,
    pat: &[u8],
    dst_pat: &[u8],
    covered: u64,
) -> std::io::Result<Option<Comparison>> {
    let p = ctx.p;
    let win = main.len() as u64;
    let mut total = Comparison::default();
    let mut rel = 0u64;
    while rel < covered {
        let len = (covered - rel).min(win) as usize;
        let c = match ctx.shape {
            Shape::Read { src } => {
                if !p2p {
                    return Ok(None);
                }
                // the same range, once by P2P into the pattern-filled buffer,
                // once into host memory
                fill_slots(main, len, pat);
                let r = ctx.read_window(src, p.src_offset, rel, len, main)?;
                window_done(&r, len)?;
                let r = ctx.read_window(src, p.src_offset, rel, len, ref_a)?;
                window_done(&r, len)?;
                let pattern = pattern_window(pat, 0, len);
                // SAFETY: both reads have finished (window_done); nothing
                // writes either buffer while they are compared.
                compare(
                    unsafe { main.slice(0, len) },
                    unsafe { ref_a.slice(0, len) },
                    p.src_offset + rel,
                    Some(&pattern),
                )
            }
            Shape::Copy { src, dst } => {
                for (t, base, buf) in [(src, p.src_offset, ref_a), (dst, p.dst_offset, ref_b)] {
                    let r = ctx.read_window(t, base, rel, len, buf)?;
                    window_done(&r, len)?;
                }
                let pattern = pattern_window(dst_pat, rel, len);
                // SAFETY: both reads have finished (window_done); nothing
                // writes either buffer while they are compared.
                let (got, want) = unsafe { (ref_b.slice(0, len), ref_a.slice(0, len)) };
                let mut c = compare(got, want, p.dst_offset + rel, Some(&pattern));
                if !c.matches() {
                    let stale = pattern_window(pat, rel, len);
                    c.stale_buffer = count_pattern_where_differs(got, want, &stale);
                }
                c
            }
            Shape::Write { dst } => {
                let r = ctx.read_window(dst, p.dst_offset, rel, len, ref_b)?;
                window_done(&r, len)?;
                let expected = pattern_window(pat, rel, len);
                let pattern = pattern_window(dst_pat, rel, len);
                // SAFETY: the read has finished (window_done); nothing
                // writes the buffer while it is compared.
                compare(
                    unsafe { ref_b.slice(0, len) },
                    &expected,
                    p.dst_offset + rel,
                    Some(&pattern),
                )
            }
        };
        total.add(c);
        rel += len as u64;
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, name: &str, data: &[u8]) -> Option<Target> {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        Target::open(&p, true, false).ok()
    }

    fn params(size: u64) -> Params {
        Params {
            chunk: 16384,
            qd: 4,
            engine: EngineKind::Threads,
            size,
            duration: None,
            src_offset: 0,
            dst_offset: 0,
            repeat: 1,
            verify: true,
            baseline: false,
            progress: false,
        }
    }

    /// A copy whose writes never landed in part of DST: verification names
    /// the first offset, counts the bytes, and sees they are the fill pattern.
    #[test]
    fn verify_finds_bytes_that_never_arrived_and_wrong_ones() {
        let dir = tempfile::tempdir().unwrap();
        let len = 256 * 1024;
        let mut src_data = vec![0u8; len];
        fill_pattern(&mut src_data, 42);
        let mut dst_pat = vec![0u8; 16384];
        fill_pattern(&mut dst_pat, 43);
        let mut dst_data = src_data.clone();
        // 8 KiB at 100 KiB never arrived: DST still holds its fill pattern
        let at = 100 * 1024;
        dst_data[at..at + 8192].copy_from_slice(&pattern_window(&dst_pat, at as u64, 8192));
        // and three bytes arrived wrong
        for i in [200_000, 200_001, 250_000] {
            dst_data[i] ^= 0xff;
        }
        let (Some(src), Some(dst)) = (
            file(dir.path(), "s", &src_data),
            file(dir.path(), "d", &dst_data),
        ) else {
            return; // no O_DIRECT on this file system
        };
        let p = params(len as u64);
        let shape = Shape::Copy {
            src: &src,
            dst: &dst,
        };
        let ctx = Ctx {
            shape: &shape,
            p: &p,
            bar_label: String::new(),
        };
        let main = DmaBuffer::host(4 * 16384).unwrap();
        let (a, b) = (
            DmaBuffer::host(4 * 16384).unwrap(),
            DmaBuffer::host(4 * 16384).unwrap(),
        );
        let mut pat = vec![0u8; 16384];
        fill_pattern(&mut pat, 44);
        let c = verify(&ctx, &main, true, &a, &b, &pat, &dst_pat, len as u64)
            .unwrap()
            .unwrap();
        assert_eq!(c.bytes_compared, len as u64);
        assert_eq!(c.first_mismatch, Some(at as u64));
        let coincide = (0..8192)
            .filter(|&i| dst_data[at + i] == src_data[at + i])
            .count() as u64;
        assert_eq!(c.bytes_differ, 8192 - coincide + 3);
        assert_eq!(c.untouched, 8192 - coincide);
        let stale_by_chance = |dst_data: &[u8]| {
            let w = pattern_window(&pat, 0, len);
            (0..len)
                .filter(|&i| dst_data[i] != src_data[i] && dst_data[i] == w[i])
                .count() as u64
        };
        assert_eq!(c.stale_buffer, stale_by_chance(&dst_data));

        // the P2P buffer's pattern went on to DST: the read never reached it
        let at2 = 64 * 1024;
        dst_data[at2..at2 + 4096].copy_from_slice(&pattern_window(&pat, at2 as u64, 4096));
        std::fs::write(dir.path().join("d"), &dst_data).unwrap();
        let c = verify(&ctx, &main, true, &a, &b, &pat, &dst_pat, len as u64)
            .unwrap()
            .unwrap();
        assert_eq!(c.first_mismatch, Some(at2 as u64));
        assert!(c.stale_buffer >= 4000);
        assert_eq!(c.stale_buffer, stale_by_chance(&dst_data));
    }

    /// The whole pipeline, write shape: the buffer's pattern lands on DST,
    /// DST's original is restored, and the report says so.
    #[test]
    fn write_shape_moves_the_buffer_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let orig = vec![0x11u8; 1 << 20];
        let Some(dst) = file(dir.path(), "d", &orig) else {
            return;
        };
        let stand_in = dir.path().join("p2pmem");
        std::fs::write(&stand_in, b"").unwrap();
        let via = Via::P2p {
            path: stand_in,
            bdf: None,
        };
        let mut p = params(512 * 1024);
        p.baseline = true;
        p.engine = EngineKind::Uring;
        let r = run(&Shape::Write { dst: &dst }, &via, &p, &dir.path().join("j"));
        assert_eq!(r.outcome, Outcome::Ok, "{}", r.message);
        assert_eq!(r.verify.unwrap().bytes_compared, 512 * 1024);
        assert!(r.baseline.is_some() && r.ratio.is_some());
        assert!(r.restore.as_ref().unwrap().restored);
        assert_eq!(std::fs::read(dir.path().join("d")).unwrap(), orig);
    }
}
