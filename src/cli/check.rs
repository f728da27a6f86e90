//! The options of `check` and `report`.

use std::path::PathBuf;

use clap::Args;

use super::{DeviceKind, EngineKind, FailOn, Severity};

use crate::units::parse_size;

/// Exit statuses of `check`.
pub(super) const CHECK_EXIT_CODES: &str = "\
Exit status:
  0  all clear: no warning or error (info findings do not count)
  1  warnings (inconclusive findings count as warnings: an unreadable fact is
     never \"all clear\"); with --fail-on error, warnings exit 0
  2  errors: the kernel will refuse a pair, or P2P cannot work at all
  3  p2pdoctor itself failed: bad arguments, an unreadable root or snapshot,
     an output that could not be written, a config file that is not valid
     (FILE:LINE), a --device that matches nothing
Only findings about the selected devices that no config file suppresses
count; findings hidden by --min-severity still do. --baseline and --policy
compare the whole machine whatever the selection.";
/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Header, verdict, findings with fixes, pair matrix.
    Text,
    /// Machine-readable, with `schema_version` (schema/check.schema.json).
    Json,
    /// JUnit XML for CI servers: one test case per rule and subject; a
    /// case fails where its finding alone fails `--fail-on`.
    Junit,
    /// Prometheus text exposition for node_exporter's textfile collector
    /// (write it with -o DIR/p2pdoctor.prom): verdict, findings by rule and
    /// severity, every pair's map type and path class, ACS-redirect
    /// bridges, degraded links, AER, the version and the run time.
    Prometheus,
    /// Graphviz with the pairs: the tree, NUMA nodes and host bridges as
    /// clusters, bridges with ACS redirect in red, each device pair as an
    /// edge coloured by the kernel's decision, a legend (`dot -Tsvg`).
    Dot,
    /// The same picture drawn by p2pdoctor itself (no Graphviz needed).
    Svg,
    /// The report a person opens (see `p2pdoctor report`): one
    /// self-contained file.
    Html,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Same as `--format dot`.
    #[arg(long, conflicts_with = "format")]
    pub dot: bool,

    /// Print one line (the verdict and its counts) instead of the report:
    /// for scripts, MOTD banners and monitoring checks. The exit status is
    /// the same.
    #[arg(long, conflicts_with = "format")]
    pub summary: bool,

    /// Take every DMA-capable endpoint as a hypothetical provider, not only
    /// the devices that expose p2pmem/.
    #[arg(long)]
    pub all_pairs: bool,

    /// With --format json: give every pair's row its path's fields
    /// (map_type, acs_redirect, ...) and its own kernel lines, instead of
    /// only a reference into paths[]. Handy with jq on small machines; the
    /// output grows with the pairs (a 600-function server has 300,000).
    #[arg(long)]
    pub expand_pairs: bool,

    /// Only pairs, and topology-matrix rows, of these kinds of device
    /// (comma-separated): gpu, nic, nvme, accelerator. With --all-pairs,
    /// `--role gpu,nic` predicts every GPU and NIC pair.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND")]
    pub role: Vec<DeviceKind>,

    /// Show chipset functions too (SATA, USB, SMBus, audio, ...): by
    /// default pairs and findings are about devices that do P2P (NVMe,
    /// GPUs and display controllers, NICs, accelerators). Also shows info
    /// findings with nothing to do in full.
    #[arg(long)]
    pub all_devices: bool,

    /// Only pairs with this device at either end, and findings about it:
    /// a BDF (0000:03:00.0) or the name the OS gives it (nvme0, mlx5_0,
    /// card1, nvme0n1). Repeat for several. A chipset function named here
    /// is shown without --all-devices.
    #[arg(long, value_name = "BDF|NAME")]
    pub device: Vec<String>,

    /// Only pairs with this device as the provider (BDF or name; repeatable).
    #[arg(long, value_name = "BDF|NAME")]
    pub provider: Vec<String>,

    /// Only pairs with this device as the client (BDF or name; repeatable).
    #[arg(long, value_name = "BDF|NAME")]
    pub client: Vec<String>,

    /// Hide findings below this severity: info, warning or error. Hidden
    /// findings still count in the verdict and the exit status.
    #[arg(long, value_enum, default_value_t = Severity::Info, value_name = "LEVEL")]
    pub min_severity: Severity,

    /// Show info findings with nothing to do in full (by default the text
    /// report folds them into one count line).
    #[arg(long)]
    pub verbose: bool,

    /// Read suppressions from FILE (default: ./p2pdoctor.toml, else
    /// $XDG_CONFIG_HOME/p2pdoctor/config.toml). Each [[suppress]] table has
    /// rule = "P2P402", device = "0000:03:00.0" (optional; BDF or OS name)
    /// and reason = "why it does not apply here". Suppressed findings do
    /// not count in the verdict or the exit status; the headline counts
    /// them and --format json lists them with their reason.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The least severe finding that makes the exit status non-zero:
    /// `warning` (exit 1 on warnings, 2 on errors) or `error` (exit 2 on
    /// errors, warnings alone exit 0).
    #[arg(long, value_enum, default_value_t = FailOn::Warning, value_name = "LEVEL")]
    pub fail_on: FailOn,

    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Read the rule catalog and the kernel table from DIR (catalog.toml,
    /// kernel.toml, as in the rules/ directory of the source) instead of
    /// the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,

    /// Settle predictions with real transfers: for each pair whose client
    /// has an NVMe namespace, read a small range of it into the provider's
    /// P2P memory and verify every byte against a host read (read-only),
    /// then mark findings confirmed, refuted or inconclusive, with the
    /// evidence (errno, kernel-log lines, throughput). Needs root and the
    /// live machine.
    #[arg(long)]
    pub confirm: bool,

    /// With --confirm: also try the other direction (the client reads P2P
    /// memory and writes it to DEVICE), on this block device only; its
    /// range is saved first and restored after. Repeat for several.
    #[arg(long, value_name = "DEVICE", requires = "confirm")]
    pub write: Vec<PathBuf>,

    /// With --confirm: bytes per experiment and direction.
    #[arg(long, default_value = "1M", value_parser = parse_size, value_name = "SIZE", requires = "confirm")]
    pub confirm_size: u64,

    /// With --confirm: the I/O engine.
    #[arg(long, value_enum, default_value_t = EngineKind::Uring, requires = "confirm")]
    pub engine: EngineKind,

    /// With --confirm --write: write even to a device that looks in use.
    #[arg(long, requires = "confirm")]
    pub force: bool,

    /// With --confirm --write: the journal directory (see `copy`).
    #[arg(long, value_name = "DIR", requires = "confirm")]
    pub journal_dir: Option<PathBuf>,

    /// Report every deviation from a known-good node recorded with
    /// `p2pdoctor baseline -o FILE` as a finding (rules P2P1001-P2P1005):
    /// pairs, devices, links, ACS Control, kernel, IOMMU, CPU.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Check the site's own rules in a TOML file (rules P2P1101-P2P1105):
    /// [kernel] min_release = "6.8", p2pdma = true; [iommu] modes =
    /// ["off", "identity"]; [acs] no_redirect_on = ["switch_ports"];
    /// [[link]] devices = "gpu", min_gen = 5, min_width = 16; [[pair]]
    /// provider = "nvme", client = "gpu", map_type = "bus_addr". Selectors:
    /// gpu, nvme, nic, accelerator, provider, any, VENDOR:DEVICE, VENDOR:*.
    /// Each section takes severity = "warning" (default: error).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// With --confirm --write: wait for another run writing the same device
    /// to finish instead of giving up on that experiment.
    #[arg(long, requires = "confirm")]
    pub wait: bool,
}
/// `report`: check's options; the format is always HTML.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub check: CheckArgs,
}
