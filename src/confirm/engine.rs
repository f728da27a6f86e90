//! The I/O engine: O_DIRECT transfers between a file or block device and a
//! [`DmaBuffer`], with a real queue depth (io_uring, or one thread per
//! request in flight where io_uring is unavailable).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::buffer::DmaBuffer;
use super::signal;

/// Which engine moves the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// io_uring: one thread, up to QD requests in flight.
    Uring,
    /// QD threads, each with one blocking pread/pwrite in flight.
    Threads,
}

impl EngineKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EngineKind::Uring => "uring",
            EngineKind::Threads => "threads",
        }
    }
}

/// One step of a chunk's journey: read from or write to `fd` at
/// `base + chunk offset`.
/// The descriptor is borrowed: the target that owns it outlives the pass.
#[derive(Debug, Clone)]
pub struct Stage<'a> {
    pub fd: BorrowedFd<'a>,
    pub write: bool,
    pub base: u64,
    /// `read /dev/nvme0n1`: for reports.
    pub label: String,
}

/// How long a pass runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Each chunk of the range once.
    Once,
    /// Cycle over the range until the time is up.
    For(Duration),
}

/// A pass: every chunk of `range` goes through `stages` in order, in a slot
/// of `buf` (slots of `chunk` bytes from `buf_offset`).
pub struct Job<'a> {
    pub stages: Vec<Stage<'a>>,
    pub buf: &'a DmaBuffer,
    pub buf_offset: usize,
    pub slots: usize,
    pub chunk: usize,
    pub range: u64,
    pub limit: Limit,
    pub qd: usize,
}

/// A transfer that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoFailure {
    /// `read /dev/nvme0n1`
    pub stage: String,
    /// The device offset of the request.
    pub offset: u64,
    pub len: usize,
    /// The errno the kernel returned; None for a short transfer.
    pub errno: Option<i32>,
    /// Bytes moved by a short transfer.
    pub short: Option<usize>,
}

impl IoFailure {
    pub fn describe(&self) -> String {
        match (self.errno, self.short) {
            (Some(e), _) => format!(
                "{} at offset {} ({} bytes) failed: {} ({})",
                self.stage,
                self.offset,
                self.len,
                errno_name(e),
                std::io::Error::from_raw_os_error(e)
            ),
            (None, Some(n)) => format!(
                "{} at offset {} moved {n} of {} bytes",
                self.stage, self.offset, self.len
            ),
            (None, None) => format!("{} at offset {} failed", self.stage, self.offset),
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default)]
pub struct PassResult {
    /// Bytes that went through every stage.
    pub bytes: u64,
    pub elapsed: Duration,
    /// Per request, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    pub failure: Option<IoFailure>,
    pub interrupted: bool,
}

/// Called with the bytes done so far, a few times a second at most.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

impl Job<'_> {
    fn chunks_per_cycle(&self) -> u64 {
        self.range.div_ceil(self.chunk as u64)
    }

    /// The relative offset and length of chunk number `i`.
    fn chunk_at(&self, i: u64) -> (u64, usize) {
        let k = i % self.chunks_per_cycle();
        let off = k * self.chunk as u64;
        (off, (self.range - off).min(self.chunk as u64) as usize)
    }

    /// Each chunk gets its own slot when they all fit (the caller then
    /// finds chunk k in slot k); otherwise slots are reused.
    fn fixed_slots(&self) -> bool {
        self.limit == Limit::Once && self.chunks_per_cycle() <= self.slots as u64
    }

    /// The start of a slot, for a request of `len` bytes in it.
    fn slot_ptr(&self, slot: usize, len: usize) -> *mut u8 {
        let at = self.buf_offset + slot * self.chunk;
        assert!(
            len <= self.chunk && at + len <= self.buf.len(),
            "slot {slot} outside the buffer"
        );
        self.buf.ptr_at(at)
    }

    fn validate(&self) {
        assert!(!self.stages.is_empty() && self.qd > 0 && self.chunk > 0 && self.range > 0);
        if self.fixed_slots() {
            assert!(self.slots as u64 >= self.chunks_per_cycle());
        } else {
            assert!(self.slots >= self.qd, "a slot per request in flight");
        }
        let needed = if self.fixed_slots() {
            self.range as usize // the last chunk may be short
        } else {
            self.slots * self.chunk
        };
        assert!(self.buf_offset + needed <= self.buf.len());
    }
}

/// Runs a pass with the chosen engine. io_uring falls back to threads when
/// the kernel refuses to set up a ring (old kernel, seccomp).
pub fn run(job: &Job, kind: EngineKind, progress: Option<Progress>) -> std::io::Result<PassResult> {
    job.validate();
    match kind {
        EngineKind::Uring => match uring::run(job, progress) {
            Err(e) if uring::setup_refused(&e) => threads(job, progress),
            r => r,
        },
        EngineKind::Threads => threads(job, progress),
    }
}

/// Whether io_uring works here (for reporting which engine ran).
pub fn uring_available() -> bool {
    io_uring::IoUring::new(2).is_ok()
}

fn threads(job: &Job, progress: Option<Progress>) -> std::io::Result<PassResult> {
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let failure: Mutex<Option<IoFailure>> = Mutex::new(None);
    let n = job.chunks_per_cycle();
    let fixed = job.fixed_slots();
    let start = Instant::now();
    let deadline = match job.limit {
        Limit::For(d) => Some(start + d),
        Limit::Once => None,
    };
    let workers = job.qd.min(if fixed { n as usize } else { job.qd }).max(1);
    let mut latencies = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|t| {
                let (next, stop, done, failure) = (&next, &stop, &done, &failure);
                s.spawn(move || {
                    let mut lat = Vec::new();
                    loop {
                        if stop.load(Ordering::Relaxed) || signal::interrupted() {
                            break;
                        }
                        // the deadline before claiming a chunk, so the
                        // claimed ones are always a prefix of the sequence
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if deadline.is_none() && i >= n {
                            break;
                        }
                        let (off, len) = job.chunk_at(i);
                        let slot = if fixed { i as usize } else { t };
                        let ptr = job.slot_ptr(slot, len);
                        for st in &job.stages {
                            let t0 = Instant::now();
                            let at = st.base + off;
                            // SAFETY: ptr..ptr+len is this worker's slot in
                            // a live mapping; the fd is open for the pass.
                            let rc = unsafe {
                                if st.write {
                                    libc::pwrite(
                                        st.fd.as_raw_fd(),
                                        ptr.cast(),
                                        len,
                                        at as libc::off_t,
                                    )
                                } else {
                                    libc::pread(
                                        st.fd.as_raw_fd(),
                                        ptr.cast(),
                                        len,
                                        at as libc::off_t,
                                    )
                                }
                            };
                            lat.push(t0.elapsed().as_nanos() as u64);
                            if rc != len as isize {
                                let errno = (rc < 0)
                                    .then(|| std::io::Error::last_os_error().raw_os_error())
                                    .flatten();
                                let mut f = failure.lock().unwrap();
                                if f.is_none() {
                                    *f = Some(IoFailure {
                                        stage: st.label.clone(),
                                        offset: at,
                                        len,
                                        errno,
                                        short: (rc >= 0).then_some(rc as usize),
                                    });
                                }
                                stop.store(true, Ordering::Relaxed);
                                return lat;
                            }
                        }
                        done.fetch_add(len as u64, Ordering::Relaxed);
                    }
                    lat
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(p) = progress {
                p(done.load(Ordering::Relaxed));
            }
        }
        for h in handles {
            latencies.extend(h.join().expect("I/O worker panicked"));
        }
    });
    let elapsed = start.elapsed();
    Ok(PassResult {
        bytes: done.into_inner(),
        elapsed,
        latencies_ns: latencies,
        failure: failure.into_inner().unwrap(),
        interrupted: signal::interrupted(),
    })
}

mod uring {
    use super::*;
    use io_uring::{IoUring, opcode, types};

    struct Op {
        off: u64,
        len: usize,
        slot: usize,
        stage: usize,
        issued: Instant,
    }

    pub fn setup_refused(e: &std::io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EACCES)
        )
    }

    fn sqe(job: &Job, op: &Op, id: usize) -> io_uring::squeue::Entry {
        let st = &job.stages[op.stage];
        let fd = types::Fd(st.fd.as_raw_fd());
        let ptr = job.slot_ptr(op.slot, op.len);
        let at = st.base + op.off;
        let e = if st.write {
            opcode::Write::new(fd, ptr.cast_const(), op.len as u32)
                .offset(at)
                .build()
        } else {
            opcode::Read::new(fd, ptr, op.len as u32).offset(at).build()
        };
        e.user_data(id as u64)
    }

    pub fn run(job: &Job, progress: Option<Progress>) -> std::io::Result<PassResult> {
        let qd = job.qd;
        let mut ring = IoUring::new((qd as u32).next_power_of_two().max(2))?;
        let n = job.chunks_per_cycle();
        let fixed = job.fixed_slots();
        let start = Instant::now();
        let deadline = match job.limit {
            Limit::For(d) => Some(start + d),
            Limit::Once => None,
        };
        let mut ops: Vec<Option<Op>> = (0..qd).map(|_| None).collect();
        let mut free_ids: Vec<usize> = (0..qd).rev().collect();
        let mut free_slots: Vec<usize> = (0..job.slots).rev().collect();
        let mut next = 0u64;
        let mut inflight = 0usize;
        let mut stop = false;
        let mut res = PassResult::default();
        let mut last_progress = start;
        let mut completed: Vec<(u64, i32)> = Vec::with_capacity(qd);
        let mut enter_errors = 0u32;
        let mut engine_error: Option<std::io::Error> = None;
        loop {
            // keep the queue full
            while inflight < qd && !stop {
                if signal::interrupted() {
                    stop = true;
                    break;
                }
                if deadline.is_none() && next >= n {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    stop = true;
                    break;
                }
                let (off, len) = job.chunk_at(next);
                let slot = if fixed {
                    next as usize
                } else {
                    free_slots.pop().expect("a free slot per free queue entry")
                };
                next += 1;
                let id = free_ids.pop().expect("a free id");
                let op = Op {
                    off,
                    len,
                    slot,
                    stage: 0,
                    issued: Instant::now(),
                };
                let e = sqe(job, &op, id);
                ops[id] = Some(op);
                // SAFETY: the buffer slot stays valid and untouched until
                // its completion is reaped below.
                unsafe { ring.submission().push(&e) }.expect("ring sized to the queue depth");
                inflight += 1;
            }
            if inflight == 0 {
                break;
            }
            match ring.submit_and_wait(1) {
                Ok(_) => enter_errors = 0,
                // a signal (Ctrl-C) while waiting: go round, stop issuing,
                // and wait for what is in flight
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EBUSY)) => {
                    continue;
                }
                Err(e) => {
                    // never return with requests in flight: the kernel would
                    // still be moving data into buffers the caller reuses
                    stop = true;
                    enter_errors += 1;
                    if enter_errors >= 100 {
                        return Err(e);
                    }
                    engine_error.get_or_insert(e);
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            }
            completed.clear();
            completed.extend(ring.completion().map(|c| (c.user_data(), c.result())));
            for &(ud, rc) in &completed {
                let id = ud as usize;
                let mut op = ops[id].take().expect("a completion for an op in flight");
                let now = Instant::now();
                res.latencies_ns
                    .push(now.duration_since(op.issued).as_nanos() as u64);
                let st = &job.stages[op.stage];
                if rc != op.len as i32 {
                    if res.failure.is_none() {
                        res.failure = Some(IoFailure {
                            stage: st.label.clone(),
                            offset: st.base + op.off,
                            len: op.len,
                            errno: (rc < 0).then_some(-rc),
                            short: (rc >= 0).then_some(rc as usize),
                        });
                    }
                    stop = true;
                } else if op.stage + 1 < job.stages.len() && res.failure.is_none() {
                    // a chunk that started finishes all its stages even
                    // after the deadline or Ctrl-C, so what moved is always
                    // whole chunks from the start of the range
                    op.stage += 1;
                    op.issued = now;
                    let e = sqe(job, &op, id);
                    ops[id] = Some(op);
                    // SAFETY: as above; the slot moves to its next stage.
                    unsafe { ring.submission().push(&e) }.expect("a free ring entry");
                    continue;
                } else if op.stage + 1 == job.stages.len() {
                    res.bytes += op.len as u64;
                }
                if !fixed {
                    free_slots.push(op.slot);
                }
                free_ids.push(id);
                inflight -= 1;
            }
            if let Some(p) = progress
                && last_progress.elapsed() >= Duration::from_millis(50)
            {
                last_progress = Instant::now();
                p(res.bytes);
            }
        }
        if let Some(e) = engine_error {
            return Err(e);
        }
        res.elapsed = start.elapsed();
        res.interrupted = signal::interrupted();
        Ok(res)
    }
}

/// Latency percentiles of a pass, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencySummary {
    pub fn of(samples: &mut [u64]) -> Option<LatencySummary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let pick = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64 / 1000.0
        };
        Some(LatencySummary {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            p999: pick(0.999),
            max: *samples.last().unwrap() as f64 / 1000.0,
        })
    }
}

/// `EREMOTEIO`, `EINVAL`...: the symbolic name of an errno.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EILSEQ => "EILSEQ",
        libc::ENOLINK => "ENOLINK",
        libc::ENODATA => "ENODATA",
        libc::EINTR => "EINTR",
        _ => "E?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confirm::buffer::{DmaBuffer, fill_pattern};
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;

    fn data_file(len: usize, seed: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut v = vec![0u8; len];
        fill_pattern(&mut v, seed);
        f.write_all(&v).unwrap();
        f.flush().unwrap();
        (f, v)
    }

    fn open_direct(p: &std::path::Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(p)
            // tmpfs before 6.6 has no O_DIRECT: fall back so the logic is tested
            .or_else(|_| std::fs::OpenOptions::new().read(true).write(true).open(p))
            .unwrap()
    }

    fn stage<'a>(fd: BorrowedFd<'a>, write: bool, base: u64, label: &str) -> Stage<'a> {
        Stage {
            fd,
            write,
            base,
            label: label.to_string(),
        }
    }

    fn read_once(kind: EngineKind, qd: usize, chunk: usize, len: usize) {
        let (f, data) = data_file(len, 3);
        let file = open_direct(f.path());
        let buf = DmaBuffer::host(len).unwrap();
        let job = Job {
            stages: vec![stage(file.as_fd(), false, 0, "read")],
            buf: &buf,
            buf_offset: 0,
            slots: len.div_ceil(chunk),
            chunk,
            range: len as u64,
            limit: Limit::Once,
            qd,
        };
        let r = run(&job, kind, None).unwrap();
        assert_eq!(r.failure, None);
        assert_eq!(r.bytes, len as u64);
        assert_eq!(r.latencies_ns.len(), len.div_ceil(chunk));
        assert!(
            // SAFETY: the run has finished; nothing writes the buffer.
            unsafe { buf.slice(0, len) } == &data[..],
            "{kind:?} qd {qd}: chunk k lands in slot k"
        );
    }

    #[test]
    fn every_chunk_lands_in_its_slot() {
        for kind in [EngineKind::Uring, EngineKind::Threads] {
            read_once(kind, 1, 4096, 64 * 1024);
            read_once(kind, 8, 16 * 1024, 1024 * 1024);
            // a short last chunk
            read_once(kind, 4, 16 * 1024, 1024 * 1024 - 4096);
        }
    }

    #[test]
    fn two_stages_copy_through_recycled_slots() {
        for kind in [EngineKind::Uring, EngineKind::Threads] {
            let len = 1 << 20;
            let (src, data) = data_file(len, 9);
            let (dst, _) = data_file(len, 10);
            let (s, d) = (open_direct(src.path()), open_direct(dst.path()));
            let buf = DmaBuffer::host(4 * 8192).unwrap();
            let job = Job {
                stages: vec![
                    stage(s.as_fd(), false, 0, "read src"),
                    stage(d.as_fd(), true, 0, "write dst"),
                ],
                buf: &buf,
                buf_offset: 0,
                slots: 4,
                chunk: 8192,
                range: len as u64,
                limit: Limit::Once,
                qd: 4,
            };
            let r = run(&job, kind, None).unwrap();
            assert_eq!(r.failure, None, "{kind:?}");
            assert_eq!(r.bytes, len as u64);
            assert_eq!(std::fs::read(dst.path()).unwrap(), data, "{kind:?}");
        }
    }

    #[test]
    fn a_failing_request_reports_its_errno_and_offset() {
        for kind in [EngineKind::Uring, EngineKind::Threads] {
            let (f, _) = data_file(1 << 16, 1);
            // read-only descriptor, write stage: EBADF
            let ro = std::fs::File::open(f.path()).unwrap();
            let buf = DmaBuffer::host(1 << 16).unwrap();
            let job = Job {
                stages: vec![stage(ro.as_fd(), true, 4096, "write x")],
                buf: &buf,
                buf_offset: 0,
                slots: 1,
                chunk: 4096,
                range: 8192,
                limit: Limit::Once,
                qd: 1,
            };
            let r = run(&job, kind, None).unwrap();
            let fail = r.failure.expect("EBADF");
            assert_eq!(fail.errno, Some(libc::EBADF), "{kind:?}");
            assert_eq!(fail.offset, 4096);
            assert_eq!(fail.stage, "write x");
            assert!(fail.describe().contains("EBADF"), "{}", fail.describe());
        }
    }

    #[test]
    fn duration_limit_cycles_over_the_range() {
        let (f, _) = data_file(1 << 16, 2);
        let file = open_direct(f.path());
        let buf = DmaBuffer::host(4 * 4096).unwrap();
        let job = Job {
            stages: vec![stage(file.as_fd(), false, 0, "read")],
            buf: &buf,
            buf_offset: 0,
            slots: 4,
            chunk: 4096,
            range: 1 << 16,
            limit: Limit::For(Duration::from_millis(150)),
            qd: 4,
        };
        let r = run(&job, EngineKind::Uring, None).unwrap();
        assert!(
            r.bytes > 1 << 16,
            "more than one cycle in 150 ms: {}",
            r.bytes
        );
        assert!(r.elapsed >= Duration::from_millis(150));
    }

    #[test]
    fn latency_percentiles() {
        let mut v: Vec<u64> = (1..=1000).map(|x| x * 1000).collect();
        let s = LatencySummary::of(&mut v).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (500.0, 900.0, 990.0, 1000.0));
        assert!(LatencySummary::of(&mut []).is_none());
    }
}
