//! The command-line interface: the types here are the documentation of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::render::style::ColorChoice;
use crate::render::{Format, RenderOptions, topo_renderer};
use crate::root::SystemRoot;
use crate::scan::{self, ScanOptions};
use crate::topology::Tree;

/// Exit status when the tool itself failed (bad arguments, unreadable
/// input, a write error).
pub const EXIT_TOOL_FAILURE: i32 = 3;

const EXIT_CODES: &str = "\
Exit status:
  0  success (for `check`: all clear)
  1  warnings found (`check`)
  2  errors found (`check`)
  3  p2pdoctor itself failed: bad arguments, an unreadable root or snapshot,
     an output that could not be written";

/// p2pdoctor: a doctor for PCIe peer-to-peer DMA on Linux.
///
/// It reads the machine (sysfs, procfs, config space, the kernel log),
/// builds the PCI tree, and explains which devices can DMA into each
/// other's memory and why. Everything is read below a root: the live
/// system by default, or a captured tree or snapshot with --root.
#[derive(Debug, Parser)]
#[command(name = "p2pdoctor", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Read the machine from PATH instead of `/`.
    ///
    /// PATH is either a directory laid out like a live system
    /// (PATH/sys/bus/pci/devices, PATH/proc/cmdline, ...) or a snapshot
    /// archive written by `p2pdoctor snapshot`. Symbolic links inside it
    /// are resolved against PATH and can never lead outside it.
    #[arg(long, global = true, env = "P2PDOCTOR_ROOT", value_name = "PATH")]
    pub root: Option<PathBuf>,

    /// When to colour human output. NO_COLOR in the environment turns
    /// `auto` off.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Do not look up vendor and device names in the system's pci.ids
    /// (IDs stay hex). P2PDOCTOR_PCI_IDS=FILE points at another pci.ids.
    #[arg(long, global = true)]
    pub no_names: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the PCI tree: host bridges, root ports, switches, endpoints.
    ///
    /// Each line shows the address, the role, the name, the link as
    /// `Gen4 x16` (flagged when it trained below what it can do), ACS
    /// control bits on ports, the IOMMU group, the NUMA node, the driver,
    /// P2P memory (size, published) and block devices.
    ///
    /// Examples:
    ///   p2pdoctor topo
    ///   p2pdoctor topo --format json | jq '.devices[] | select(.p2pmem)'
    ///   p2pdoctor topo --dot > topo.dot && dot -Tsvg topo.dot > topo.svg
    ///   p2pdoctor --root server.tar.gz topo
    Topo(TopoArgs),

    /// Capture what the analysis reads into one archive for a support ticket.
    ///
    /// Read-only. The archive holds the sysfs subset p2pdoctor reads (with
    /// raw config space), the procfs files (command line, CPU identity,
    /// kernel release, host name), the P2P-relevant kernel-config lines and
    /// kernel-log lines, and a manifest listing all of it. Analyse it
    /// anywhere with `p2pdoctor --root FILE topo`. Run as root for full
    /// config space and the kernel log.
    ///
    /// Example:
    ///   sudo p2pdoctor snapshot -o server.tar.gz
    Snapshot(SnapshotArgs),
}

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
}

/// Parses arguments, runs, prints errors; returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_TOOL_FAILURE,
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`p2pdoctor topo | head`) is not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return 0;
            }
            let mut err = anstream::stderr();
            let _ = writeln!(err, "p2pdoctor: error: {e:#}");
            EXIT_TOOL_FAILURE
        }
    }
}

pub fn run(cli: Cli) -> Result<i32> {
    let scan_options = ScanOptions {
        no_names: cli.global.no_names,
    };
    match cli.command {
        Command::Topo(args) => {
            let root = open_root(cli.global.root.as_deref())?;
            let facts = scan::scan(&root, &scan_options);
            let tree = Tree::build(facts);
            let format = if args.dot { Format::Dot } else { args.format };
            let opts = RenderOptions {
                color: args.output.is_none()
                    && format == Format::Text
                    && cli.global.color.resolve(),
                source: root.describe(),
            };
            let mut buf = Vec::with_capacity(64 * 1024);
            topo_renderer(format).render(&tree, &opts, &mut buf)?;
            write_output(args.output.as_deref(), &buf, true)?;
            Ok(0)
        }
        Command::Snapshot(args) => {
            let root = open_root(cli.global.root.as_deref())?;
            let to_stdout = args.output == Path::new("-");
            if !to_stdout && args.output.exists() && !args.force {
                anyhow::bail!(
                    "{} already exists; choose another name or pass --force to replace it",
                    args.output.display()
                );
            }
            let snap = crate::snapshot::capture(root)?;
            write_output(
                (!to_stdout).then_some(args.output.as_path()),
                &snap.archive,
                true,
            )?;
            if !to_stdout {
                let mut err = anstream::stderr();
                let _ = writeln!(
                    err,
                    "wrote {} ({} files, {} devices, {}) from {}",
                    args.output.display(),
                    snap.files,
                    snap.devices,
                    crate::render::human_bytes(snap.archive.len() as u64),
                    snap.source
                );
                for l in &snap.limitations {
                    let _ = writeln!(err, "note: {l}");
                }
            }
            Ok(0)
        }
    }
}

fn open_root(path: Option<&Path>) -> Result<SystemRoot> {
    match path {
        None => Ok(SystemRoot::live()),
        Some(p) => Ok(SystemRoot::open(p)?),
    }
}

/// Writes to the file (atomically: a temporary beside it, then renamed, so
/// an interrupted run leaves no half file) or to standard output.
fn write_output(path: Option<&Path>, bytes: &[u8], replace: bool) -> Result<()> {
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
        Some(p) => {
            if !replace && p.exists() {
                anyhow::bail!("{} already exists", p.display());
            }
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.p2pdoctor-{}", std::process::id()));
            std::fs::write(&tmp, bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, p).with_context(|| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot write {}", p.display())
            })?;
            Ok(())
        }
    }
}
