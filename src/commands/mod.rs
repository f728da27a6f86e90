//! The command handlers: each reads its arguments (defined in
//! [`crate::cli`]), wires the stages together (scan → topology → diagnose
//! → confirm → render) and writes the result. They sit above every stage;
//! no stage imports them.

pub mod check;
pub mod compare;
pub mod copy;
pub mod docs;
pub mod topo;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};
use crate::root::SystemRoot;
use crate::scan::ScanOptions;

pub fn run(cli: Cli) -> Result<i32> {
    // A names file asked for by name must be there: silently falling back
    // to hex IDs would hide the mistake.
    if !cli.global.no_names
        && let Some(v) = std::env::var_os(crate::scan::pciids::PCI_IDS_ENV)
        && !v.is_empty()
        && !Path::new(&v).exists()
    {
        anyhow::bail!(
            "{}={} does not exist: point it at a pci.ids file, unset it to use the system's, or pass --no-names",
            crate::scan::pciids::PCI_IDS_ENV,
            Path::new(&v).display()
        );
    }
    let scan_options = ScanOptions {
        no_names: cli.global.no_names,
        vendor_tools: false,
    };
    match cli.command {
        Command::Topo(args) => topo::topo(&cli.global, &scan_options, args),
        // Only check compares its classes with the vendor's tool.
        Command::Check(args) => check::run_check(
            &cli.global,
            &ScanOptions {
                vendor_tools: true,
                ..scan_options
            },
            args,
        ),
        Command::Report(args) => check::run_report(
            &cli.global,
            &ScanOptions {
                vendor_tools: true,
                ..scan_options
            },
            args,
        ),
        Command::Explain(args) => docs::run_explain(&cli.global, args),
        Command::Rules(args) => docs::run_rules(&cli.global, args),
        Command::Diff(args) => compare::run_diff(&cli.global, &scan_options, args),
        Command::Man(args) => docs::run_man(args),
        Command::Completions(args) => docs::completions(args),
        Command::Baseline(args) => compare::run_baseline(&cli.global, &scan_options, args),
        Command::Fleet(args) => compare::run_fleet(&cli.global, &scan_options, args),
        Command::Copy(args) => copy::copy(&cli.global, args),
        Command::Restore(args) => copy::restore(&cli.global, args),
        Command::Snapshot(args) => topo::snapshot(&cli.global, args),
    }
}

/// Whether human output is coloured: `--color`, NO_COLOR, a terminal.
pub(crate) fn color(global: &crate::cli::GlobalArgs) -> bool {
    crate::render::style::ColorChoice::from(global.color).resolve()
}

pub(crate) fn open_root(path: Option<&Path>) -> Result<SystemRoot> {
    match path {
        None => Ok(SystemRoot::live()),
        Some(p) if p == Path::new("-") => Ok(SystemRoot::stdin()?),
        Some(p) => Ok(SystemRoot::open(p)?),
    }
}

/// Writes to the file (atomically: a temporary beside it, then renamed, so
/// an interrupted run leaves no half file) or to standard output.
pub(crate) fn write_output(path: Option<&Path>, bytes: &[u8], replace: bool) -> Result<()> {
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
            if let Some(mut f) = open_special(p)? {
                f.write_all(bytes)
                    .and_then(|()| f.flush())
                    .with_context(|| format!("cannot write {}", p.display()))?;
                return Ok(());
            }
            let tmp = temporary_beside(p);
            // Name the path the user gave; the temporary beside it is ours.
            std::fs::write(&tmp, bytes).with_context(|| {
                format!(
                    "cannot write {} (through the temporary file {} beside it)",
                    p.display(),
                    tmp.display()
                )
            })?;
            rename_into_place(&tmp, p)
        }
    }
}

/// Like [`write_output`], but `render` writes (buffered) as it goes, so a
/// large document is not built whole in memory first.
pub(crate) fn stream_output(
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
            if let Some(f) = open_special(p)? {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, f);
                render(&mut out)
                    .and_then(|()| out.flush())
                    .with_context(|| format!("cannot write {}", p.display()))?;
                return Ok(());
            }
            let tmp = temporary_beside(p);
            let written = std::fs::File::create(&tmp).and_then(|f| {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, f);
                render(&mut out)?;
                out.flush()
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                // Name the path the user gave; the temporary beside it is ours.
                return Err(e).with_context(|| {
                    format!(
                        "cannot write {} (through the temporary file {} beside it)",
                        p.display(),
                        tmp.display()
                    )
                });
            }
            rename_into_place(&tmp, p)
        }
    }
}

/// An output path that is there and not a regular file (after following
/// links: /dev/stdout, /dev/null, a FIFO) is written into as it is, never
/// replaced by a file; a block device or a directory is refused. None: a
/// regular file or nothing, written atomically beside and renamed.
pub(crate) fn open_special(p: &Path) -> Result<Option<std::fs::File>> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(p) else {
        return Ok(None);
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(None);
    }
    if ft.is_dir() || ft.is_block_device() {
        anyhow::bail!(
            "{} is a {}: not an output file; choose a file name",
            p.display(),
            if ft.is_dir() {
                "directory"
            } else {
                "block device"
            }
        );
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .with_context(|| format!("cannot open {} for writing", p.display()))?;
    Ok(Some(f))
}

/// A temporary name beside `p` for an atomic write.
pub(crate) fn temporary_beside(p: &Path) -> PathBuf {
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

pub(crate) fn rename_into_place(tmp: &Path, p: &Path) -> Result<()> {
    std::fs::rename(tmp, p).with_context(|| {
        let _ = std::fs::remove_file(tmp);
        format!("cannot write {}", p.display())
    })
}

pub(crate) fn load_catalog(dir: Option<&Path>) -> Result<crate::diagnose::Catalog> {
    match dir {
        None => Ok(crate::diagnose::Catalog::embedded()),
        Some(d) => Ok(crate::diagnose::Catalog::from_dir(d)?),
    }
}

pub(crate) fn load_kernel_data(dir: Option<&Path>) -> Result<crate::diagnose::KernelData> {
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
