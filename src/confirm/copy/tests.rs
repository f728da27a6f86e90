use std::path::Path;

use super::super::buffer::{DmaBuffer, fill_pattern};
use super::super::engine::EngineKind;
use super::super::target::Target;
use super::runs::Ctx;
use super::verify::{pattern_window, verify};
use super::*;

/// Faults a test injects into [`run`](fn@super::run) between saving DST and
/// restoring it, to see the guard put DST back however the run ends.
pub(super) mod fault {
    use std::cell::Cell;

    thread_local! {
        static PANIC_AFTER_THE_WRITES: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes this thread's next experiment panic once its writes are done,
    /// before its restore step.
    pub fn panic_after_the_writes() {
        PANIC_AFTER_THE_WRITES.set(true);
    }

    /// Called by `run` after the writes: panics if asked to (once).
    pub fn after_the_writes() {
        if PANIC_AFTER_THE_WRITES.replace(false) {
            panic!("fault injected after the writes");
        }
    }
}

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

/// DST (file `d` holding `data`) and a stand-in p2pmem file to copy
/// through; None where the file system has no O_DIRECT.
fn dst_and_stand_in(dir: &Path, data: &[u8]) -> Option<(Target, Via)> {
    let dst = file(dir, "d", data)?;
    let stand_in = dir.join("p2pmem");
    std::fs::write(&stand_in, b"").unwrap();
    let via = Via::P2p {
        path: stand_in,
        bdf: None,
    };
    Some((dst, via))
}

/// The whole pipeline, write shape: the buffer's pattern lands on DST,
/// DST's original is restored, and the report says so.
#[test]
fn write_shape_moves_the_buffer_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let orig = vec![0x11u8; 1 << 20];
    let Some((dst, via)) = dst_and_stand_in(dir.path(), &orig) else {
        return;
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

/// A run that stops between saving DST and its restore step (here a
/// panic after the writes) still leaves DST as it was: the guard puts the
/// range back and removes the journal. Without the guard DST would keep
/// the buffer's pattern, and the journal would wait for `p2pdoctor
/// restore`.
#[test]
fn a_run_that_panics_after_writing_still_restores_dst() {
    let dir = tempfile::tempdir().unwrap();
    let orig = vec![0x5au8; 1 << 20];
    let Some((dst, via)) = dst_and_stand_in(dir.path(), &orig) else {
        return;
    };
    let p = params(512 * 1024);
    let journals = dir.path().join("j");
    fault::panic_after_the_writes();
    let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&Shape::Write { dst: &dst }, &via, &p, &journals)
    }));
    assert!(ended.is_err(), "the injected fault did not fire");
    assert_eq!(std::fs::read(dir.path().join("d")).unwrap(), orig);
    let left: Vec<_> = std::fs::read_dir(&journals)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "journal"))
        .collect();
    assert!(left.is_empty(), "journals left behind: {left:?}");
}
