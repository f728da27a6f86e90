//! PCI specification knowledge: config-space decoding. Pure: no I/O, no Linux.
pub mod bdf;
pub use bdf::{Bdf, BdfParseError};
