//! The repetitions of an experiment: each a host baseline, DST's fill,
//! the main pass and the verification, stopping at the first failure; and
//! what they add up to in the report.

use super::super::buffer::{Comparison, DmaBuffer, fill_pattern};
use super::super::engine::{self, IoFailure, Job, Limit, PassResult, Stage};
use super::super::progress::{Bar, Goal};
use super::super::target::Target;
use super::report::{CopyReport, Outcome, PassReport, RunReport, Stop, aggregate};
use super::setup::Buffers;
use super::verify::{fill_slots, verify};
use super::{Params, Shape};

/// A seed for run `run`'s fill pattern `what`: it differs from run to run
/// and from process to process, so bytes an earlier run left behind do
/// not pass for this one's.
fn seed(run: u32, what: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
        ^ ((run as u64) << 8)
        ^ what.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What every pass of an experiment shares.
pub(super) struct Ctx<'a> {
    pub shape: &'a Shape<'a>,
    pub p: &'a Params,
    /// The progress bar's label: the shape's name.
    pub bar_label: String,
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
    pub(super) fn read_window(
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
/// Runs the repetitions (`--repeat`), each into the report's `runs`, and
/// ends the report on the first that stops early.
pub(super) fn repeat(shape: &Shape, p: &Params, bufs: &Buffers, rep: &mut CopyReport) -> Totals {
    let ctx = Ctx {
        shape,
        p,
        bar_label: shape.name().to_string(),
    };
    let mut totals = Totals::default();
    for run in 0..p.repeat.max(1) {
        let mut rr = RunReport {
            main: None,
            baseline: None,
            verify: None,
        };
        let end = one_run(&ctx, bufs, run, rep.params.baseline, &mut rr, &mut totals);
        rep.runs.push(rr);
        match end {
            Ok(()) if !super::super::signal::interrupted() => {}
            Ok(()) | Err(None) => break,
            Err(Some(stop)) => {
                rep.fail(stop.outcome, stop.errno, stop.message);
                break;
            }
        }
    }
    totals
}

/// What the runs add up to in the report: all passes together, the ratio
/// to the host baseline, the verification, an interruption, and notes on
/// what was not verified.
pub(super) fn summarize(
    rep: &mut CopyReport,
    totals: Totals,
    shape: &Shape,
    p: &Params,
    p2p: bool,
) {
    let Totals {
        main: mut all_main,
        base: mut all_base,
        verify: total_verify,
    } = totals;
    if super::super::signal::interrupted() && rep.outcome == Outcome::Ok {
        rep.fail(
            Outcome::Interrupted,
            Some(libc::EINTR),
            "interrupted".into(),
        );
    }
    if !p.verify {
        rep.notes
            .push("not verified (--no-verify): throughput only".into());
    } else if matches!(shape, Shape::Read { .. }) && !p2p {
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
}

/// A failure of the I/O engine itself (not of a transfer it ran).
fn engine_failed(e: std::io::Error) -> Option<Stop> {
    Some(Stop::error(
        e.raw_os_error(),
        format!("the I/O engine failed: {e}"),
    ))
}

/// `Err(None)`: interrupted, nothing failed.
/// How a run ended early: `Err(None)`, interrupted (nothing failed);
/// `Err(Some(stop))`, failed.
type RunEnd = Result<(), Option<Stop>>;

/// What the runs add up to.
#[derive(Default)]
pub(super) struct Totals {
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
    let pattern = |what| {
        let mut v = vec![0u8; ctx.p.chunk];
        fill_pattern(&mut v, seed(run, what));
        v
    };
    let (pat, dst_pat) = (pattern(1), pattern(2));
    // 1. host baseline
    if baseline {
        host_baseline(ctx, b, &pat, rr, totals)?;
    }
    // 2. DST holds a pattern, so a write that never lands is seen
    if let Some(f) = ctx.prefill_dst(&b.host, &dst_pat).map_err(engine_failed)? {
        return Err(Some(Stop::error(
            f.errno,
            format!("preparing the destination failed: {}", f.describe()),
        )));
    }
    // 3. the main pass
    let moved = main_pass(ctx, b, &pat, rr, totals)?;
    // 4. verify every byte
    if !ctx.p.verify {
        return Ok(());
    }
    check(ctx, b, (&pat, &dst_pat), moved, rr, totals)
}

/// The same transfer through host memory, for the ratio: if it fails too,
/// the device or file is at fault, not P2P.
fn host_baseline(
    ctx: &Ctx,
    b: &Buffers,
    pat: &[u8],
    rr: &mut RunReport,
    totals: &mut Totals,
) -> RunEnd {
    fill_slots(&b.host, b.host.len(), pat);
    let mut r = ctx.pass(&b.host, "host").map_err(engine_failed)?;
    rr.baseline = Some(PassReport::of(&mut r));
    let (failed, interrupted) = (r.failure.clone(), r.interrupted);
    totals.base.push(r);
    if let Some(f) = failed {
        return Err(Some(Stop::error(
            f.errno,
            format!(
                "the transfer fails through host memory too, so the device or file is at fault, not P2P: {}",
                f.describe()
            ),
        )));
    }
    if interrupted {
        return Err(None);
    }
    Ok(())
}

/// The timed transfer through the main buffer: the bytes it moved, or how
/// it stopped (a P2P transfer the kernel fails with an errno, while host
/// memory worked, is refused).
fn main_pass(
    ctx: &Ctx,
    b: &Buffers,
    pat: &[u8],
    rr: &mut RunReport,
    totals: &mut Totals,
) -> Result<u64, Option<Stop>> {
    let main = b.main();
    fill_slots(main, main.len(), pat);
    let mut r = ctx
        .pass(main, if b.is_p2p() { "p2p" } else { "host" })
        .map_err(engine_failed)?;
    rr.main = Some(PassReport::of(&mut r));
    let (moved, failure, interrupted) = (r.bytes, r.failure.clone(), r.interrupted);
    totals.main.push(r);
    if let Some(f) = failure {
        let baseline_ok = rr.baseline.as_ref().is_some_and(|x| x.failure.is_none());
        let outcome = if f.errno.is_some() && (baseline_ok || b.is_p2p()) {
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
    Ok(moved)
}

/// Verifies what the main pass moved (`(pat, dst_pat)`: the buffer's and
/// DST's fill patterns); a mismatch says where the data went missing.
fn check(
    ctx: &Ctx,
    b: &Buffers,
    (pat, dst_pat): (&[u8], &[u8]),
    moved: u64,
    rr: &mut RunReport,
    totals: &mut Totals,
) -> RunEnd {
    let p = ctx.p;
    let covered = if p.duration.is_some() {
        moved.min(p.size)
    } else {
        p.size
    };
    let c = verify(
        ctx,
        b.main(),
        b.is_p2p(),
        &b.ref_a,
        &b.ref_b,
        pat,
        dst_pat,
        covered,
    )
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::Interrupted {
            None // Ctrl-C: nothing to conclude from a partial window
        } else {
            Some(Stop::error(
                e.raw_os_error(),
                format!("reading back for verification failed: {e}"),
            ))
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
