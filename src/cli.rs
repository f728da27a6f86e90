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
    #[command(verbatim_doc_comment)]
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
    #[command(verbatim_doc_comment)]
    Snapshot(SnapshotArgs),

    /// Predict what the kernel will decide for every pair of devices, and
    /// explain every risk with a fix.
    ///
    /// For each pair (provider of P2P memory, client) p2pdoctor mirrors the
    /// running kernel's P2PDMA code (calc_map_type_and_dist in
    /// drivers/pci/p2pdma.c): bus address, through the host bridge or not
    /// supported, the distance, the bridges with ACS redirect in the order
    /// the kernel lists them, and the host-bridge whitelist of this kernel
    /// release. Then every rule of the catalog (`p2pdoctor rules`) looks for
    /// risks on the way: IOMMU translation, NUMA and host-bridge crossings,
    /// ordering hazards, narrow or degraded links, MPS, AER, drivers.
    /// Findings are "predicted"; "inconclusive" when the facts they need
    /// could not be read (run as root for full config space).
    ///
    /// By default the pairs are every p2pmem provider with every other
    /// DMA-capable endpoint; --all-pairs takes every endpoint as a provider.
    ///
    /// Examples:
    ///   sudo p2pdoctor check
    ///   p2pdoctor check --all-pairs
    ///   p2pdoctor --root server.tar.gz check --format json | jq '.pairs[]'
    ///   p2pdoctor check --fail-on error    # in a pipeline: warnings pass
    #[command(verbatim_doc_comment, after_long_help = CHECK_EXIT_CODES, after_help = CHECK_EXIT_CODES)]
    Check(CheckArgs),

    /// Explain one rule: what it checks, why it matters, an example, how to
    /// fix it.
    ///
    /// Examples:
    ///   p2pdoctor explain P2P301
    ///   p2pdoctor explain acs-redirect
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),

    /// List the rules `check` applies (ID, name, severity, title).
    ///
    /// Examples:
    ///   p2pdoctor rules
    ///   p2pdoctor rules --format json | jq -r '.rules[].id'
    #[command(verbatim_doc_comment)]
    Rules(RulesArgs),
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

/// Exit statuses of `check`.
const CHECK_EXIT_CODES: &str = "\
Exit status:
  0  all clear: no warning or error (info findings do not count)
  1  warnings (inconclusive findings count as warnings: an unreadable fact is
     never \"all clear\"); with --fail-on error, warnings exit 0
  2  errors: the kernel will refuse a pair, or P2P cannot work at all
  3  p2pdoctor itself failed: bad arguments, an unreadable root or snapshot,
     an output that could not be written";

/// Output formats of `check` and `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// Header, verdict, findings with fixes, pair matrix.
    Text,
    /// Machine-readable, with `schema_version` (schema/check.schema.json).
    Json,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// Take every DMA-capable endpoint as a hypothetical provider, not only
    /// the devices that expose p2pmem/.
    #[arg(long)]
    pub all_pairs: bool,

    /// The least severe finding that makes the exit status non-zero:
    /// `warning` (exit 1 on warnings, 2 on errors) or `error` (exit 2 on
    /// errors, warnings alone exit 0).
    #[arg(long, value_enum, default_value_t = crate::diagnose::FailOn::Warning, value_name = "LEVEL")]
    pub fail_on: crate::diagnose::FailOn,

    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Read the rule catalog and the kernel table from DIR (catalog.toml,
    /// kernel.toml, as in the rules/ directory of the source) instead of
    /// the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The rule: its ID (P2P301) or name (acs-redirect).
    #[arg(value_name = "ID")]
    pub rule: String,

    /// Read the rule catalog from DIR/catalog.toml.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// Read the rule catalog from DIR/catalog.toml.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,
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
            stream_output(args.output.as_deref(), |out| {
                topo_renderer(format).render(&tree, &opts, out)
            })?;
            // The process exits next: freeing a large tree's tens of
            // thousands of allocations (and closing the root's held
            // directories) one by one would only delay that.
            std::mem::forget(tree);
            std::mem::forget(root);
            Ok(0)
        }
        Command::Check(args) => run_check(&cli.global, &scan_options, args),
        Command::Explain(args) => run_explain(&cli.global, args),
        Command::Rules(args) => run_rules(&cli.global, args),
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
            let tmp = temporary_beside(p);
            std::fs::write(&tmp, bytes)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            rename_into_place(&tmp, p)
        }
    }
}

/// Like [`write_output`], but `render` writes (buffered) as it goes, so a
/// large document is not built whole in memory first.
fn stream_output(
    path: Option<&Path>,
    render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    match path {
        None => {
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
            render(&mut out)?;
            out.flush()?;
            Ok(())
        }
        Some(p) => {
            let tmp = temporary_beside(p);
            let written = std::fs::File::create(&tmp).and_then(|f| {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, f);
                render(&mut out)?;
                out.flush()
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
            }
            rename_into_place(&tmp, p)
        }
    }
}

/// A temporary name beside `p` for an atomic write.
fn temporary_beside(p: &Path) -> PathBuf {
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.p2pdoctor-{}", std::process::id()))
}

fn rename_into_place(tmp: &Path, p: &Path) -> Result<()> {
    std::fs::rename(tmp, p).with_context(|| {
        let _ = std::fs::remove_file(tmp);
        format!("cannot write {}", p.display())
    })
}

fn load_catalog(dir: Option<&Path>) -> Result<crate::diagnose::Catalog> {
    match dir {
        None => Ok(crate::diagnose::Catalog::embedded()),
        Some(d) => Ok(crate::diagnose::Catalog::from_dir(d)?),
    }
}

fn load_kernel_data(dir: Option<&Path>) -> Result<crate::diagnose::KernelData> {
    match dir {
        None => Ok(crate::diagnose::KernelData::embedded()),
        Some(d) => {
            let path = d.join("kernel.toml");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the kernel table {}", path.display()))?;
            crate::diagnose::KernelData::parse(&text)
                .with_context(|| format!("in {}", path.display()))
        }
    }
}

/// `p2pdoctor check`: the diagnosis's exit status (0, 1, 2).
fn run_check(global: &GlobalArgs, scan_options: &ScanOptions, args: CheckArgs) -> Result<i32> {
    let opts = crate::diagnose::Options {
        all_pairs: args.all_pairs,
        catalog: load_catalog(args.rules_dir.as_deref())?,
        kernel_data: load_kernel_data(args.rules_dir.as_deref())?,
    };
    let root = open_root(global.root.as_deref())?;
    let tree = Tree::build(scan::scan(&root, scan_options));
    let diagnosis = crate::diagnose::diagnose(&tree, &opts);
    let render_opts = RenderOptions {
        color: args.output.is_none() && args.format == CheckFormat::Text && global.color.resolve(),
        source: root.describe(),
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    match args.format {
        CheckFormat::Text => crate::render::check_text::render(&diagnosis, &render_opts, &mut buf)?,
        CheckFormat::Json => crate::render::check_json::render(&diagnosis, &render_opts, &mut buf)?,
    }
    write_output(args.output.as_deref(), &buf, true)?;
    Ok(diagnosis.exit_code(args.fail_on))
}

/// `p2pdoctor explain <ID>`.
fn run_explain(global: &GlobalArgs, args: ExplainArgs) -> Result<i32> {
    let catalog = load_catalog(args.rules_dir.as_deref())?;
    let Some(rule) = catalog.find(args.rule.trim()) else {
        let near = catalog.suggest(args.rule.trim());
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", near.join(", "))
        };
        anyhow::bail!(
            "no rule `{}`{hint}; `p2pdoctor rules` lists them all",
            args.rule
        );
    };
    let mut buf = Vec::new();
    crate::render::check_text::render_explain(rule, global.color.resolve(), &mut buf)?;
    write_output(None, &buf, true)?;
    Ok(0)
}

/// `p2pdoctor rules`.
fn run_rules(global: &GlobalArgs, args: RulesArgs) -> Result<i32> {
    let catalog = load_catalog(args.rules_dir.as_deref())?;
    let mut buf = Vec::new();
    match args.format {
        CheckFormat::Text => {
            crate::render::check_text::render_rules(&catalog, global.color.resolve(), &mut buf)?
        }
        CheckFormat::Json => crate::render::check_json::render_rules(&catalog, &mut buf)?,
    }
    write_output(None, &buf, true)?;
    Ok(0)
}
