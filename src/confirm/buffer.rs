//! DMA buffers: host memory for the bounce baseline, and P2P memory mapped
//! from a provider's `p2pmem/allocate` (or a stand-in file for tests).

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use memmap2::{MmapMut, MmapOptions};

use serde::Serialize;

/// The page size every buffer length and I/O offset is a multiple of.
pub const PAGE: usize = 4096;

/// What memory a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BufferKind {
    /// Anonymous host memory: the bounce baseline.
    Host,
    /// A provider's BAR memory, from `/sys/bus/pci/devices/<bdf>/p2pmem/allocate`.
    P2pmem,
    /// A file mapped in place of p2pmem (tests, or a dry run without a
    /// provider): the I/O path is the host's, not P2P.
    StandIn,
}

impl BufferKind {
    /// What a file mapped as the P2P buffer is: a provider's p2pmem
    /// allocate file under /sys, or a stand-in anywhere else. The one
    /// place that tells them apart.
    pub fn of_file(path: &Path) -> BufferKind {
        if path.starts_with("/sys/") {
            BufferKind::P2pmem
        } else {
            BufferKind::StandIn
        }
    }
}

/// A page-aligned mapping the kernel DMAs into or out of.
///
/// The kernel writes into it behind the borrow checker's back (O_DIRECT
/// reads land in it while other slots are being compared), so the bytes are
/// reached through a raw pointer taken once from the mapping, and every
/// view of them is `unsafe` with the rule spelled out: no Rust reference to
/// a range may be alive while the kernel or another reference writes it.
pub struct DmaBuffer {
    /// The start of `map`, taken from `MmapMut::as_mut_ptr` once.
    ptr: NonNull<u8>,
    len: usize,
    kind: BufferKind,
    source: PathBuf,
    /// Owns the mapping (unmapped on drop); never touched through itself
    /// after `ptr` was taken.
    _map: MmapMut,
}

// SAFETY: DmaBuffer owns its mapping (MmapMut is Send and Sync); the raw
// pointer only makes the compiler forget that. Sharing it across threads
// is sound because every access to the bytes goes through the unsafe
// `slice`/`slice_mut`/`ptr_at`, whose callers (the engine) hand disjoint
// slots to the kernel and to at most one thread at a time.
unsafe impl Send for DmaBuffer {}
// SAFETY: as for Send.
unsafe impl Sync for DmaBuffer {}

impl std::fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaBuffer")
            .field("len", &self.len)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

/// Why a P2P buffer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "cannot map {len} bytes of {path}: {source}{hint}",
        hint = map_hint(source)
    )]
    Map {
        path: PathBuf,
        len: usize,
        source: io::Error,
    },
    #[error("cannot size the stand-in file {path}: {source}")]
    Size { path: PathBuf, source: io::Error },
    #[error("cannot allocate {len} bytes of host memory: {source}")]
    Host { len: usize, source: io::Error },
}

impl BufferError {
    /// The errno behind it, for reports.
    pub fn errno(&self) -> Option<i32> {
        match self {
            BufferError::Open { source, .. }
            | BufferError::Map { source, .. }
            | BufferError::Size { source, .. }
            | BufferError::Host { source, .. } => source.raw_os_error(),
        }
    }
}

fn map_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOMEM) => {
            " (the provider's p2pmem pool is smaller than the buffer or in use: lower --qd or --chunk, or check p2pmem/available)"
        }
        Some(libc::EINVAL) => " (p2pmem/allocate takes only shared mappings at offset 0)",
        Some(libc::ENODEV) | Some(libc::EOPNOTSUPP) => {
            " (this kernel does not allow user-space mappings of p2pmem)"
        }
        _ => "",
    }
}

impl DmaBuffer {
    /// `len` bytes of anonymous host memory, faulted in now so the first
    /// transfer does not pay for it.
    pub fn host(len: usize) -> Result<Self, BufferError> {
        let len = round_up(len);
        let map = MmapOptions::new()
            .len(len)
            .populate()
            .map_anon()
            .map_err(|source| BufferError::Host { len, source })?;
        Ok(Self::own(
            map,
            len,
            BufferKind::Host,
            PathBuf::from("host memory"),
        ))
    }

    /// Maps `len` bytes of P2P memory from an allocate file: a shared
    /// mapping at offset 0, the only one the kernel accepts. A path outside
    /// `/sys` is a stand-in file (grown to `len` when shorter).
    pub fn p2pmem(path: &Path, len: usize) -> Result<Self, BufferError> {
        let len = round_up(len);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| BufferError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let stand_in = BufferKind::of_file(path) == BufferKind::StandIn;
        if stand_in {
            let have = file
                .metadata()
                .map_err(|source| BufferError::Size {
                    path: path.to_path_buf(),
                    source,
                })?
                .len();
            if have < len as u64 {
                file.set_len(len as u64)
                    .map_err(|source| BufferError::Size {
                        path: path.to_path_buf(),
                        source,
                    })?;
            }
        }
        // SAFETY: memmap2 maps files unsafely because another process may
        // change or truncate them under the mapping. Here the file is a
        // provider's p2pmem/allocate (each open gets its own allocation,
        // nothing else can reach it) or a stand-in file that this run
        // created and sized; its bytes are only ever read through the
        // unsafe accessors below. The mapping outlives the descriptor.
        let map =
            unsafe { MmapOptions::new().len(len).offset(0).map_mut(&file) }.map_err(|source| {
                BufferError::Map {
                    path: path.to_path_buf(),
                    len,
                    source,
                }
            })?;
        let kind = if stand_in {
            BufferKind::StandIn
        } else {
            BufferKind::P2pmem
        };
        Ok(Self::own(map, len, kind, path.to_path_buf()))
    }

    fn own(mut map: MmapMut, len: usize, kind: BufferKind, source: PathBuf) -> Self {
        debug_assert_eq!(map.len(), len);
        // A mapping's address is never null; NonNull says so.
        let ptr = NonNull::new(map.as_mut_ptr()).expect("mmap returned a null mapping");
        DmaBuffer {
            ptr,
            len,
            kind,
            source,
            _map: map,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn kind(&self) -> BufferKind {
        self.kind
    }

    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether `[offset, offset + len)` lies inside the buffer (no
    /// overflow on the way).
    fn in_bounds(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// The address of byte `offset` (at most `len()`), for the kernel. The
    /// pointer is safe to have; using it is the caller's business, under
    /// the same rule as [`slice_mut`](Self::slice_mut).
    pub fn ptr_at(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.len, "offset {offset} beyond {}", self.len);
        // SAFETY: `offset <= len`, so the result is inside the mapping or
        // one past its end, which `add` allows.
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    /// The bytes `[offset, offset+len)`.
    ///
    /// # Safety
    /// Nothing may write these bytes while the slice is alive: no I/O in
    /// flight on them (the engine has finished with the range) and no
    /// `slice_mut` of them. The buffer is shared with the kernel, so the
    /// borrow checker cannot see this.
    pub unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(
            self.in_bounds(offset, len),
            "{offset}+{len} beyond {}",
            self.len
        );
        // SAFETY: in bounds (checked above, without overflow); nothing
        // writes the range while the slice lives (the caller's contract).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) }
    }

    /// Mutable bytes `[offset, offset+len)`.
    ///
    /// # Safety
    /// No other reference to these bytes may be alive (no `slice` of them,
    /// no other `slice_mut`), and no I/O may be in flight on them: the
    /// buffer is shared with the kernel, so the borrow checker cannot see it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        assert!(
            self.in_bounds(offset, len),
            "{offset}+{len} beyond {}",
            self.len
        );
        // SAFETY: in bounds; the caller holds the only reference to the range.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset), len) }
    }
}

/// Rounds up to a whole number of pages (at least one).
pub fn round_up(len: usize) -> usize {
    len.max(1).div_ceil(PAGE) * PAGE
}

/// Fills `buf` with a xorshift pattern from `seed`: no stale buffer, zero
/// page or disk content imitates it. The same seed gives the same bytes.
pub fn fill_pattern(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
    for b in words.into_remainder() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// What a full comparison found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub bytes_compared: u64,
    pub bytes_differ: u64,
    /// The offset (in the device range) of the first byte that differs.
    pub first_mismatch: Option<u64>,
    /// Of the differing bytes, how many still hold the fill pattern: the
    /// DMA never reached them.
    pub untouched: u64,
    /// Copies only: of the differing bytes, how many hold the P2P buffer's
    /// fill pattern: the read into P2P memory never arrived, and the buffer's
    /// old contents went on to the destination.
    pub stale_buffer: u64,
}

impl Comparison {
    pub fn matches(&self) -> bool {
        self.bytes_differ == 0
    }

    pub fn add(&mut self, o: Comparison) {
        self.bytes_compared += o.bytes_compared;
        self.bytes_differ += o.bytes_differ;
        self.untouched += o.untouched;
        self.stale_buffer += o.stale_buffer;
        if self.first_mismatch.is_none() {
            self.first_mismatch = o.first_mismatch;
        }
    }
}

/// Compares every byte of `actual` with `expected` (not a checksum).
/// `base` is the device offset of byte 0; `pattern` is what `actual` held
/// before the transfer, to tell bytes that never arrived from wrong ones.
pub fn compare(actual: &[u8], expected: &[u8], base: u64, pattern: Option<&[u8]>) -> Comparison {
    assert_eq!(actual.len(), expected.len());
    let mut c = Comparison {
        bytes_compared: actual.len() as u64,
        ..Comparison::default()
    };
    const STEP: usize = 4096;
    for (i, (a, e)) in actual.chunks(STEP).zip(expected.chunks(STEP)).enumerate() {
        if a == e {
            continue; // memcmp speed for the common case
        }
        for (j, (x, y)) in a.iter().zip(e).enumerate() {
            if x != y {
                let at = i * STEP + j;
                c.bytes_differ += 1;
                if c.first_mismatch.is_none() {
                    c.first_mismatch = Some(base + at as u64);
                }
                if pattern.is_some_and(|p| p[at] == *x) {
                    c.untouched += 1;
                }
            }
        }
    }
    c
}

/// Of the bytes where `actual` differs from `expected`, how many equal
/// `pattern` (a second fill pattern the data may have come from).
pub fn count_pattern_where_differs(actual: &[u8], expected: &[u8], pattern: &[u8]) -> u64 {
    actual
        .iter()
        .zip(expected)
        .zip(pattern)
        .filter(|((a, e), p)| a != e && a == p)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_seed_dependent() {
        let mut a = vec![0u8; 8195];
        let mut b = vec![0u8; 8195];
        fill_pattern(&mut a, 7);
        fill_pattern(&mut b, 7);
        assert_eq!(a, b);
        fill_pattern(&mut b, 8);
        assert_ne!(a, b);
        assert!(
            a.iter().filter(|&&x| x == 0).count() < 200,
            "not a zero page"
        );
    }

    #[test]
    fn compare_counts_every_byte_and_untouched_ones() {
        let mut pattern = vec![0u8; 3 * 4096];
        fill_pattern(&mut pattern, 1);
        let expected: Vec<u8> = (0..pattern.len()).map(|i| (i % 251) as u8).collect();
        let mut actual = expected.clone();
        // 100 bytes never arrived (still the pattern), 3 bytes corrupted
        actual[5000..5100].copy_from_slice(&pattern[5000..5100]);
        for i in [9000, 9001, 12000] {
            actual[i] = expected[i].wrapping_add(1);
        }
        let c = compare(&actual, &expected, 1 << 20, Some(&pattern));
        assert_eq!(c.bytes_compared, 3 * 4096);
        assert_eq!(c.first_mismatch, Some((1 << 20) + 5000));
        // a pattern byte may coincide with the expected byte
        let same = (5000..5100).filter(|&i| pattern[i] == expected[i]).count() as u64;
        assert_eq!(c.bytes_differ, 100 - same + 3);
        assert_eq!(c.untouched, 100 - same);
        assert!(!c.matches());
        assert!(compare(&expected, &expected, 0, None).matches());
    }

    #[test]
    fn host_buffer_is_page_aligned_and_writable() {
        let b = DmaBuffer::host(5000).unwrap();
        assert_eq!(b.len(), 8192);
        assert_eq!(b.ptr_at(0) as usize % PAGE, 0);
        // SAFETY: nothing else refers to the buffer.
        unsafe { b.slice_mut(0, 8192) }.fill(0xab);
        // SAFETY: no I/O and no mutable slice is alive.
        assert!(unsafe { b.slice(4096, 4096) }.iter().all(|&x| x == 0xab));
    }

    #[test]
    #[should_panic(expected = "beyond")]
    fn a_range_that_overflows_is_refused_not_wrapped() {
        let b = DmaBuffer::host(4096).unwrap();
        // offset + len wraps around usize: must panic, not read at offset-1.
        // SAFETY: never reached beyond the bounds check.
        let _ = unsafe { b.slice(usize::MAX, 2) };
    }

    #[test]
    fn stand_in_file_is_grown_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p2pmem");
        std::fs::write(&path, b"").unwrap();
        {
            let b = DmaBuffer::p2pmem(&path, 4096).unwrap();
            assert_eq!(b.kind(), BufferKind::StandIn);
            // SAFETY: nothing else refers to the buffer.
            unsafe { b.slice_mut(0, 4) }.copy_from_slice(b"p2p!");
        }
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"p2p!");
        let e = DmaBuffer::p2pmem(&dir.path().join("missing"), 4096).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
    }
}
