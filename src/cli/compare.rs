//! The options of the commands that compare machines: `diff`, `baseline`
//! and `fleet`.

use std::path::PathBuf;

use clap::Args;

use super::ChangeClass;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first machine: a snapshot, a captured tree, or `/`.
    #[arg(value_name = "A")]
    pub a: PathBuf,

    /// The second machine.
    #[arg(value_name = "B")]
    pub b: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,

    /// Leave out whole classes of difference (comma-separated): pair,
    /// finding, acs, iommu, kernel, cmdline, device, link, p2pmem, cpu.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CLASS")]
    pub ignore: Vec<ChangeClass>,

    /// Compare every endpoint pair, not only pairs with a P2P memory
    /// provider (see `check --all-pairs`).
    #[arg(long)]
    pub all_pairs: bool,

    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The file to write (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,

    /// Record every endpoint pair (see `check --all-pairs`); `check
    /// --baseline` must then be run with --all-pairs too.
    #[arg(long)]
    pub all_pairs: bool,
}
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Snapshot archives, captured trees, or directories of archives.
    #[arg(value_name = "DIR|FILE", required = true)]
    pub inputs: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FleetFormat::Text)]
    pub format: FleetFormat,

    /// Threads [default: the CPUs available].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub jobs: Option<u32>,

    /// Predict every endpoint pair (see `check --all-pairs`).
    #[arg(long)]
    pub all_pairs: bool,

    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
/// Output formats of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// The changes, most consequential first, each with both values.
    Text,
    /// Every change with its class and both values, with
    /// `schema_version` (schema/diff.schema.json).
    Json,
}
/// Output formats of `fleet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetFormat {
    /// Families, outliers with what makes each differ, findings by node.
    Text,
    /// The same with every node, with `schema_version`
    /// (schema/fleet.schema.json).
    Json,
}
