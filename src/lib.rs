//! p2pdoctor: predicts and explains PCIe peer-to-peer DMA on Linux.
//!
//! The pipeline (see DESIGN.md): `root` gives access to a system tree,
//! `scan` reads it into [`scan::Facts`], `pci` decodes config-space bytes,
//! `topology` builds the tree and paths, `render` turns values into bytes.

pub mod cli;
pub mod confirm;
pub mod diagnose;
pub mod fixture;
pub mod pci;
pub mod render;
pub mod root;
pub mod scan;
pub mod snapshot;
pub mod topology;
