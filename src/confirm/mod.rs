//! Confirm: real P2P transfers with full verification.
//!
//! - [`buffer`]: P2P memory from `p2pmem/allocate` and host memory;
//! - [`engine`]: O_DIRECT I/O with a real queue depth (io_uring or threads);
//! - [`target`]: block devices and files, and the checks before a write;
//! - [`journal`]: save before writing, restore after, recover after a crash;
//! - [`copy`]: one experiment, timed and verified;
//! - [`pairs`]: `check --confirm`, an experiment per provider/client pair.

pub mod buffer;
pub mod copy;
pub mod engine;
pub mod journal;
pub mod kmsg;
pub mod pairs;
pub mod progress;
pub mod signal;
pub mod target;
