//! p2pdoctor: predicts and explains PCIe peer-to-peer DMA on Linux.
//!
//! The pipeline (see docs/ARCHITECTURE.md): `root` gives access to a system tree,
//! `scan` reads it into [`scan::Facts`], `pci` decodes config-space bytes,
//! `topology` builds the tree and paths, `render` turns values into bytes.
//!
//! `pci` is the `p2pdoctor-pci` crate (crates/pci), re-exported here so that
//! `p2pdoctor::pci::...` and `crate::pci::...` name it. The fixture builder
//! the tests use is the `p2pdoctor-fixture` crate (crates/fixture), a
//! dev-dependency: this library does not export it.

pub mod baseline;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod config;
pub mod confirm;
pub mod diagnose;
pub mod fleet;
pub use p2pdoctor_pci as pci;
pub mod policy;
pub mod render;
pub mod root;
pub mod scan;
pub mod snapshot;
pub mod topology;
pub mod units;

/// How many threads to split `items` pieces of work over: one below 256
/// (threads would cost more than they save), else the CPUs available, at
/// most 8. The CPU count is looked up once (it reads cgroup files).
pub(crate) fn threads_for(items: usize) -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if items < 256 {
        return 1;
    }
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
    })
}
