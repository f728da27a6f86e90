//! The options of `topo` and `snapshot`.

use std::path::PathBuf;

use clap::Args;

use super::Format;

#[derive(Debug, Args)]
pub struct TopoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Same as `--format dot`.
    #[arg(long, conflicts_with = "format")]
    pub dot: bool,

    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The archive to write (a gzip-compressed tar; `-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,

    /// For a ticket that leaves the company: replace the host name, PCIe
    /// device serial numbers, NVMe subsystem NQNs (they carry serials),
    /// MAC-like addresses, GUIDs and UUIDs with pseudonyms of the same
    /// shape. Equal values stay equal within the snapshot, so its analysis
    /// is unchanged; pseudonyms are keyed at random per run and cannot be
    /// matched across snapshots. The manifest lists what was replaced and
    /// where.
    #[arg(long)]
    pub redact: bool,
}
