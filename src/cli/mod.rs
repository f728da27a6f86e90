//! The command-line interface: the types here are the documentation of it.
//!
//! `mod.rs` holds the top level (the global options, the commands and
//! their help); each command family's options are in its own file, beside
//! the handlers in `commands/`: `check` (check, report), `copy` (copy,
//! restore), `topo` (topo, snapshot), `compare` (diff, baseline, fleet),
//! `docs` (man, completions, explain, rules).

mod check;
mod compare;
mod copy;
mod docs;
mod topo;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use check::{CheckArgs, ReportArgs, ReportFormat};
pub use compare::{BaselineArgs, DiffArgs, DiffFormat, FleetArgs, FleetFormat};
pub use copy::{CopyArgs, CopyFormat, RestoreArgs};
pub use docs::{CompletionsArgs, ExplainArgs, ManArgs, ReadsNoMachine, RulesArgs, RulesFormat};
pub use topo::{SnapshotArgs, TopoArgs};

use check::CHECK_EXIT_CODES;
use copy::COPY_EXIT_CODES;

/// Exit status when the tool itself failed (bad arguments, unreadable
/// input, a write error).
pub const EXIT_TOOL_FAILURE: i32 = 3;

const EXIT_CODES: &str = "\
Exit status:
  0  success (for `check`: all clear; `diff`: the same; `fleet`: no outliers)
  1  warnings found (`check`); differences (`diff`); outliers (`fleet`)
  2  errors found (`check`)
  3  p2pdoctor itself failed: bad arguments, an unreadable root or snapshot,
     an output that could not be written
  130 interrupted (Ctrl-C, SIGTERM) during `copy` or `check --confirm`; what
     was written has been restored
  141 (killed by SIGPIPE) standard output was a pipe whose reader went away";

/// `0.1.0 (git 1a2b3c4d5e6f)`: the release and the revision it was built
/// from (build.rs; `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("P2PDOCTOR_GIT_REV"),
    ")"
);

/// p2pdoctor: a doctor for PCIe peer-to-peer DMA on Linux.
///
/// It reads the machine (sysfs, procfs, config space, the kernel log),
/// builds the PCI tree, and explains which devices can DMA into each
/// other's memory and why. Everything is read below a root: the live
/// system by default, or a captured tree or snapshot with --root.
#[derive(Debug, Parser)]
#[command(name = "p2pdoctor", version = VERSION, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
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
    /// PATH is one of (told apart by their contents):
    ///   - a directory laid out like a live system (PATH/sys/bus/pci/devices,
    ///     PATH/proc/cmdline, ...); symbolic links inside it are resolved
    ///     against PATH and can never lead outside it;
    ///   - a snapshot archive written by `p2pdoctor snapshot`;
    ///   - a text file of lspci output: `lspci -tv`/`-tvnn`, `lspci -vvv`
    ///     (with or without -nn, -D, -k, -s), `lspci -xxxx` hex or an
    ///     `lspci -F` dump, or any mix of them pasted from a ticket, with
    ///     shell prompts, code fences and `uname -r`, `cat /proc/cmdline`,
    ///     `lscpu`, `numactl --hardware` and dmesg output around them;
    ///   - an hwloc export (`lstopo --of xml`);
    ///   - `-`: any of the files above on standard input.
    ///
    /// Facts a text does not carry are reported unknown, never assumed.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "P2PDOCTOR_ROOT",
        value_name = "PATH",
        verbatim_doc_comment
    )]
    pub root: Option<PathBuf>,

    /// When to colour human output. NO_COLOR in the environment turns
    /// `auto` off.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Do not look up vendor and device names in the system's pci.ids
    /// (IDs stay hex). P2PDOCTOR_PCI_IDS=FILE points at another pci.ids
    /// (an error if it does not exist; set but empty: no names file).
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_names: bool,
    /// Wrap human output to N columns. By default text wraps to the
    /// terminal (COLUMNS, else the window size) and is not wrapped when
    /// piped or redirected. Words are never split: a PCI address, a path
    /// or a command stays whole; tables are not wrapped.
    #[arg(long, global = true, help_heading = "Global options", value_name = "N")]
    pub width: Option<usize>,
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
    ///   p2pdoctor check --baseline good.json --policy p2p.toml
    #[command(verbatim_doc_comment, after_long_help = CHECK_EXIT_CODES, after_help = CHECK_EXIT_CODES)]
    Check(CheckArgs),

    /// Write the report a person opens: one self-contained HTML file for a
    /// support ticket.
    ///
    /// The verdict, the drawn topology (NUMA nodes, host bridges, switches,
    /// bridges with ACS redirect in red, every pair as a curve coloured by
    /// the kernel's decision), the pair matrix with the kernel's decision
    /// on hover, findings with their evidence and fixes, confirm results
    /// with P2P-versus-host throughput bars, the kernel-log lines, and the
    /// facts that could not be read. No network, no external scripts or
    /// fonts: it opens anywhere, offline. Takes check's options; exits 0
    /// once written (the verdict is in the file; `check` gives it as an
    /// exit status).
    ///
    /// Examples:
    ///   sudo p2pdoctor report -o report.html
    ///   p2pdoctor --root server.tar.gz report -o server.html
    ///   sudo p2pdoctor report --confirm -o report.html
    #[command(
        verbatim_doc_comment,
        mut_arg("format", |a| a.hide(true)),
        mut_arg("dot", |a| a.hide(true)),
        mut_arg("summary", |a| a.hide(true)),
        mut_arg("fail_on", |a| a.hide(true))
    )]
    Report(ReportArgs),

    /// Explain one rule: what it checks, why it matters, an example, how to
    /// fix it.
    ///
    /// Examples:
    ///   p2pdoctor explain P2P301
    ///   p2pdoctor explain acs-redirect
    #[command(verbatim_doc_comment)]
    Explain(ExplainArgs),

    /// Run a real, verified transfer through P2P memory: the p2pmem-test
    /// job done right.
    ///
    /// Reads a range of SRC by O_DIRECT into a provider's P2P memory (the
    /// SRC device's controller DMAs into the provider's BAR), and with DST
    /// writes it on from there (DST's controller DMAs out of the BAR). The
    /// same transfer through host memory is timed beside it, and every byte
    /// is verified against a read through host memory: the buffer and DST
    /// are filled with a pattern first, so data that never arrived is told
    /// apart from wrong data.
    ///
    /// Safe by default: without DST nothing is written. DST is written only
    /// when named again with --write; its range is saved first (in memory
    /// and a journal file) and restored afterwards, and a journal left by a
    /// crash is restored by the next run (or `p2pdoctor restore`). Devices
    /// that are mounted, have partitions in use or are held by
    /// device-mapper/md are refused unless --force.
    ///
    /// SIZE values take K, M, G suffixes (powers of 1024): 128K, 64M, 1G.
    /// Offsets, sizes and chunks must be multiples of 4096.
    ///
    /// Examples:
    ///   sudo p2pdoctor copy /dev/nvme1n1 --via 0000:03:00.0
    ///   sudo p2pdoctor copy /dev/nvme1n1 /dev/nvme2n1 --via 0000:03:00.0 --write /dev/nvme2n1
    ///   sudo p2pdoctor copy /dev/nvme1n1 --via 03:00.0 --duration 10s --qd 64 --chunk 1M --format json
    ///   p2pdoctor copy disk.img --host --no-verify --size 1G   # the engine alone
    #[command(verbatim_doc_comment, after_long_help = COPY_EXIT_CODES, after_help = COPY_EXIT_CODES)]
    Copy(CopyArgs),

    /// Restore device ranges that an interrupted `copy` or `check --confirm`
    /// left changed (from the journal; the next run does it too).
    ///
    /// Example:
    ///   sudo p2pdoctor restore
    #[command(verbatim_doc_comment)]
    Restore(RestoreArgs),

    /// List the rules `check` applies (ID, name, severity, title).
    ///
    /// Examples:
    ///   p2pdoctor rules
    ///   p2pdoctor rules --format json | jq -r '.rules[].id'
    #[command(verbatim_doc_comment)]
    Rules(RulesArgs),

    /// What changed between two machines, or one machine at two times,
    /// that matters for P2P.
    ///
    /// A and B are each a snapshot archive, a captured tree, or `/` for
    /// this machine. Devices are matched by Device Serial Number, then by
    /// address, then by IDs and position when bus numbers moved; then
    /// every difference is listed, most consequential first: pairs whose
    /// map type, distance, path class or ACS-redirect bridges changed,
    /// findings that appeared or went away, ACS Control bits, IOMMU mode,
    /// group types and group sharing, kernel release and command line,
    /// devices added, removed or moved, links, P2P memory, CPU.
    ///
    /// Exit status: 0 no difference, 1 differences, 3 failure.
    ///
    /// Examples:
    ///   p2pdoctor diff node3.tar.gz node17.tar.gz
    ///   p2pdoctor diff good.tar.gz / --ignore cpu,link
    ///   p2pdoctor diff a.tar.gz b.tar.gz --format json | jq '.changes[]'
    #[command(verbatim_doc_comment)]
    Diff(DiffArgs),

    /// Print a manual page (roff) for p2pdoctor or one of its commands.
    ///
    /// Examples:
    ///   p2pdoctor man | man -l -
    ///   p2pdoctor man check > p2pdoctor-check.1
    #[command(verbatim_doc_comment)]
    Man(ManArgs),

    /// Print a shell completion script.
    ///
    /// Examples:
    ///   p2pdoctor completions bash > /etc/bash_completion.d/p2pdoctor
    ///   p2pdoctor completions zsh > "${fpath[1]}/_p2pdoctor"
    ///   p2pdoctor completions fish > ~/.config/fish/completions/p2pdoctor.fish
    #[command(verbatim_doc_comment)]
    Completions(CompletionsArgs),
    /// Record what a known-good node looks like, for `check --baseline`.
    ///
    /// The record holds the kernel release, CONFIG_PCI_P2PDMA, the IOMMU
    /// mode, the kernel parameters that change P2P, the CPU model, every
    /// function (IDs, role, driver, link, ACS Control, P2P memory) and every
    /// predicted pair and finding, each device named by its place (host
    /// bridge, then device.function from the root bus down), never by host
    /// name, serial number or bus number: one node's record describes every
    /// node built like it. Schema: schema/baseline.schema.json.
    ///
    /// Examples:
    ///   sudo p2pdoctor baseline -o good.json
    ///   p2pdoctor --root node3.tar.gz baseline -o good.json
    ///   p2pdoctor check --baseline good.json      # on every other node
    #[command(verbatim_doc_comment)]
    Baseline(BaselineArgs),

    /// Many nodes at once: families of nodes that look alike, the outliers
    /// and what makes each differ, and the findings of every node.
    ///
    /// Reads snapshots (`p2pdoctor snapshot` archives; a directory stands
    /// for the *.tar.gz, *.tgz and *.tar files in it) on all CPUs, keeping
    /// only a fingerprint of each. Nodes with one fingerprint look the same
    /// for P2P (host names, serial numbers and the rest of the command line
    /// do not count). Fingerprints sharing at least half their facts form a
    /// family; the one most nodes have is the norm, and every other one is
    /// an outlier, shown with `diff`'s differences from the norm's first
    /// node.
    ///
    /// Exit status: 0 no outliers, 1 outliers, 3 failure (also when a
    /// snapshot could not be read; the report lists it).
    ///
    /// Examples:
    ///   p2pdoctor fleet snapshots/
    ///   p2pdoctor fleet node*.tar.gz --format json | jq '.families[].outliers[]'
    #[command(verbatim_doc_comment)]
    Fleet(FleetArgs),
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
    match crate::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`p2pdoctor check | head`): end quietly, by
            // SIGPIPE like other tools (the shell sees 141), not as a
            // success the pipeline did not have.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                die_of_sigpipe();
                return 128 + libc::SIGPIPE;
            }
            let mut err = anstream::stderr();
            // Paths and strings from a hostile tree reach messages too.
            let msg = format!("{e:#}");
            let _ = writeln!(
                err,
                "p2pdoctor: error: {}",
                crate::render::style::escape_controls(&msg)
            );
            EXIT_TOOL_FAILURE
        }
    }
}

/// Ends the process by SIGPIPE (Rust ignores it, so writes saw EPIPE).
fn die_of_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE and raising it
    // in this thread; the default action ends the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
}

/// An option's values as the command line spells them, mirroring a
/// stage's own enum variant for variant (the stages know nothing of clap):
/// the doc comments are the `--help` text of each value, and `From` goes
/// both ways, so a variant added on either side without the other fails
/// to compile.
macro_rules! value_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident => $stage:ty {
            $($(#[$vmeta:meta])* $variant:ident,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl From<$name> for $stage {
            fn from(v: $name) -> Self {
                match v {
                    $($name::$variant => <$stage>::$variant,)+
                }
            }
        }

        impl From<$stage> for $name {
            fn from(v: $stage) -> Self {
                match v {
                    $(<$stage>::$variant => $name::$variant,)+
                }
            }
        }
    };
}

value_enum! {
    /// Output formats, as `--format` spells them.
    pub enum Format => crate::render::Format {
        /// A tree for people, like `lspci -tv`.
        Text,
        /// Machine-readable, with `schema_version`.
        Json,
        /// Graphviz: pipe into `dot -Tsvg`.
        Dot,
    }
}

value_enum! {
    /// When to colour, as `--color` spells it.
    pub enum ColorChoice => crate::render::style::ColorChoice {
        /// Colour when standard output is a terminal and NO_COLOR is unset.
        Auto,
        Always,
        Never,
    }
}

value_enum! {
    /// Which engine moves the data.
    pub enum EngineKind => crate::confirm::engine::EngineKind {
        /// io_uring: one thread, up to QD requests in flight.
        Uring,
        /// QD threads, each with one blocking pread/pwrite in flight.
        Threads,
    }
}

value_enum! {
    /// The kinds of difference `diff --ignore` can leave out.
    pub enum ChangeClass => crate::compare::ChangeClass {
        /// A pair's map type, distance or path class.
        Pair,
        /// A finding appeared or went away.
        Finding,
        /// ACS Control bits of a function.
        Acs,
        /// IOMMU mode, a group's domain type, who shares a group.
        Iommu,
        /// The kernel release.
        Kernel,
        /// The kernel command line.
        Cmdline,
        /// A device added, removed or moved to another address.
        Device,
        /// Link speed or width.
        Link,
        /// P2P memory: size, published.
        P2pmem,
        /// CPU vendor, family, model.
        Cpu,
    }
}

value_enum! {
    /// The kinds of device `--role` knows.
    pub enum DeviceKind => crate::diagnose::matrix::DeviceKind {
        /// Display and 3D controllers (class 03).
        Gpu,
        /// Network and InfiniBand controllers (class 02).
        Nic,
        /// NVMe controllers (class 01 08).
        Nvme,
        /// Processing accelerators (class 12) and co-processors (0b 40).
        Accelerator,
    }
}

value_enum! {
    /// How bad a finding is, as `--min-severity` spells it.
    pub enum Severity => crate::diagnose::Severity {
        /// The kernel will refuse, or data can be lost.
        Error,
        /// It works, but worse than it could, or at a risk.
        Warning,
        /// Worth knowing; nothing to fix.
        Info,
    }
}

value_enum! {
    /// The threshold for a non-zero exit status.
    pub enum FailOn => crate::diagnose::FailOn {
        /// Exit 1 on warnings, 2 on errors.
        Warning,
        /// Exit 2 on errors; warnings alone exit 0.
        Error,
    }
}
