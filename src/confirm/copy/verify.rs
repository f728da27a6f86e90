//! Verification: every byte of the range that moved, compared with a
//! reference read through host memory, and the fill patterns that tell
//! bytes that never arrived from bytes that arrived wrong.

use super::super::buffer::{Comparison, DmaBuffer, compare, count_pattern_where_differs};
use super::super::engine::PassResult;
use super::Shape;
use super::runs::Ctx;

/// Fills every `chunk`-sized slot of `buf[..len]` with the same pattern,
/// so a byte's pattern value depends only on its offset modulo `chunk`.
pub(super) fn fill_slots(buf: &DmaBuffer, len: usize, pat: &[u8]) {
    for off in (0..len).step_by(pat.len()) {
        let n = pat.len().min(len - off);
        // SAFETY: called between passes: no I/O in flight, no slice alive.
        unsafe { buf.slice_mut(off, n) }.copy_from_slice(&pat[..n]);
    }
}

/// The pattern expected at device offsets `[base, base+len)` of a range
/// filled slot by slot from `range_start`.
pub(super) fn pattern_window(pat: &[u8], rel_start: u64, len: usize) -> Vec<u8> {
    let c = pat.len() as u64;
    (0..len as u64)
        .map(|i| pat[((rel_start + i) % c) as usize])
        .collect()
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
pub(super) fn verify(
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
