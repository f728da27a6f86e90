//! The options of `copy` and `restore`.

use std::path::PathBuf;

use clap::Args;

use super::EngineKind;

use crate::units::{parse_duration, parse_size};

/// Exit statuses of `copy`.
pub(super) const COPY_EXIT_CODES: &str = "\
Exit status:
  0    moved and every byte verified
  2    the transfer was refused (an errno) or the data is wrong or missing
  3    the experiment could not run: bad arguments, a device that cannot be
       opened or fails through host memory too, a restore that failed
  130  interrupted (Ctrl-C, SIGTERM); what was written has been restored";

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The device or file to read (a block device such as /dev/nvme1n1, or a
    /// regular file).
    #[arg(value_name = "SRC")]
    pub src: PathBuf,

    /// Where to write what was read (only with --write DST).
    #[arg(value_name = "DST")]
    pub dst: Option<PathBuf>,

    /// The P2P memory to pass through: a provider's address (0000:03:00.0 or
    /// 03:00.0, which must have p2pmem/), its p2pmem/allocate file, or any
    /// other file to stand in for it (the path is then the host's).
    #[arg(
        long,
        value_name = "P2PMEM",
        required_unless_present = "host",
        conflicts_with = "host"
    )]
    pub via: Option<String>,

    /// Pass through host memory only (the bounce baseline by itself).
    #[arg(long)]
    pub host: bool,

    /// Allow writing to DEVICE, optionally only inside OFFSET+LENGTH
    /// (`/dev/nvme2n1`, `/dev/nvme2n1:0+64M`). Must name DST.
    #[arg(long, value_name = "DEVICE[:OFFSET+LENGTH]")]
    pub write: Option<String>,

    /// Bytes per request.
    #[arg(long, default_value = "128K", value_parser = parse_size, value_name = "SIZE")]
    pub chunk: u64,

    /// Requests in flight (the queue depth; also the P2P buffer is
    /// QD x CHUNK bytes).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub qd: u32,

    /// The I/O engine: io_uring, or QD threads with blocking pread/pwrite.
    #[arg(long, value_enum, default_value_t = EngineKind::Uring)]
    pub engine: EngineKind,

    /// Use N threads with one blocking request each (the threads engine
    /// with a queue depth of N; p2pmem-test's model, scaled out).
    #[arg(long, value_name = "N", conflicts_with_all = ["qd", "engine"], value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,

    /// Bytes of the range to move [default: 64M, or up to the end of SRC].
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub size: Option<u64>,

    /// Cycle over the range for this long instead of once (`10s`, `500ms`).
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub duration: Option<std::time::Duration>,

    /// Where the range starts on SRC (and on DST unless --dst-offset).
    #[arg(long, default_value = "0", value_parser = parse_size, value_name = "BYTES")]
    pub offset: u64,

    /// Where the range starts on DST.
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub dst_offset: Option<u64>,

    /// Run the whole experiment N times.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub repeat: u32,

    /// Skip the byte-for-byte verification (throughput only).
    #[arg(long)]
    pub no_verify: bool,

    /// Skip the host-memory baseline.
    #[arg(long)]
    pub no_baseline: bool,

    /// Write to a device even if it looks in use (mounted, held, swap).
    #[arg(long)]
    pub force: bool,

    /// Where to keep the original data of DST while it is overwritten
    /// [default: $P2PDOCTOR_JOURNAL_DIR, /var/lib/p2pdoctor/journal as root,
    /// ~/.local/state/p2pdoctor/journal otherwise].
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,

    /// When another run is writing DST, wait for it to finish instead of
    /// giving up (without it, the second run is refused and names the
    /// first one's pid).
    #[arg(long)]
    pub wait: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = CopyFormat::Text)]
    pub format: CopyFormat,

    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The journal directory (see `copy --journal-dir`).
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,

    /// Restore onto a device even if it looks in use.
    #[arg(long)]
    pub force: bool,
}
/// Output formats of `copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CopyFormat {
    /// The transfer, throughput beside the host path, latency
    /// percentiles, the verification and the kernel-log lines.
    Text,
    /// The same as one document with `schema_version`
    /// (schema/copy.schema.json).
    Json,
}
