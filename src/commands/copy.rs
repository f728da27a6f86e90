//! `p2pdoctor copy` and `p2pdoctor restore`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::write_output;
use crate::cli::{CopyArgs, CopyFormat, EXIT_TOOL_FAILURE, GlobalArgs, RestoreArgs};
use crate::confirm::copy::{self, CopyReport, Outcome, Params, Shape, Via};
use crate::confirm::journal;
use crate::confirm::target::{Target, same_file};
use crate::pci::Bdf;

/// Refuses `--root`: experiments run on the live machine only.
pub fn require_live(global: &GlobalArgs, what: &str) -> Result<()> {
    if let Some(r) = &global.root {
        bail!(
            "{what} moves real data on this machine; --root {} (or P2PDOCTOR_ROOT) points at a capture, which cannot run it",
            r.display()
        );
    }
    Ok(())
}

/// Resolves `--via`: a BDF to its allocate file, or a path as given.
pub fn resolve_via(v: &str) -> Result<Via> {
    if let Ok(bdf) = v.parse::<Bdf>() {
        let dir = PathBuf::from(format!("/sys/bus/pci/devices/{bdf}"));
        if !dir.exists() {
            bail!("no PCI function {bdf} on this machine (see `p2pdoctor topo`)");
        }
        let alloc = dir.join("p2pmem/allocate");
        if !alloc.exists() {
            let providers = list_providers();
            let hint = if providers.is_empty() {
                "no function on this machine has p2pmem/ (an NVMe drive with a CMB the driver publishes, on a kernel with CONFIG_PCI_P2PDMA)".to_string()
            } else {
                format!("providers here: {}", providers.join(", "))
            };
            let why = if dir.join("p2pmem").exists() {
                "has p2pmem/ but no allocate file (the kernel is older than 6.2, which added user-space mappings)"
            } else {
                "offers no P2P memory (no p2pmem/)"
            };
            bail!("{bdf} {why}; {hint}");
        }
        return Ok(Via::P2p {
            path: alloc,
            bdf: Some(bdf.to_string()),
        });
    }
    let path = PathBuf::from(v);
    if !path.exists() {
        bail!("--via {v}: neither a PCI address (0000:03:00.0) nor an existing file");
    }
    let bdf = path
        .ancestors()
        .filter_map(|a| a.file_name())
        .find_map(|n| n.to_str().and_then(|s| s.parse::<Bdf>().ok()))
        .filter(|_| {
            crate::confirm::buffer::BufferKind::of_file(&path)
                == crate::confirm::buffer::BufferKind::P2pmem
        })
        .map(|b| b.to_string());
    Ok(Via::P2p { path, bdf })
}

fn list_providers() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("p2pmem/allocate").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `--write DEVICE[:OFFSET+LENGTH]`
fn parse_write(s: &str) -> Result<(PathBuf, Option<(u64, u64)>)> {
    if let Some((dev, range)) = s.rsplit_once(':')
        && let Some((off, len)) = range.split_once('+')
    {
        let off = crate::units::parse_size(off).map_err(anyhow::Error::msg)?;
        let len = crate::units::parse_size(len).map_err(anyhow::Error::msg)?;
        return Ok((PathBuf::from(dev), Some((off, len))));
    }
    Ok((PathBuf::from(s), None))
}

/// Restores what earlier runs left, saying so on stderr. Returns false when
/// a journal could not be restored.
pub fn recover_journals(dir: &Path, force: bool, quiet_if_none: bool) -> bool {
    let recs = journal::recover(dir, force);
    let mut err = anstream::stderr();
    let mut ok = true;
    for r in &recs {
        let _ = writeln!(
            err,
            "p2pdoctor: journal: {}",
            crate::render::style::escape_controls(&r.message)
        );
        // A journal refused as not ours is not applied and does not stop
        // the run; a directory that cannot be trusted does.
        use journal::RecoveryOutcome::{InUse, Refused, Restored};
        ok &= matches!(r.outcome, Restored | InUse | Refused);
    }
    if recs.is_empty() && !quiet_if_none {
        let _ = writeln!(
            err,
            "p2pdoctor: no journal to restore in {}",
            crate::render::style::escape_controls(&dir.display().to_string())
        );
    }
    ok
}

/// `p2pdoctor copy`.
pub fn copy(global: &GlobalArgs, a: CopyArgs) -> Result<i32> {
    require_live(global, "copy")?;
    let chunk = a.chunk;
    if chunk == 0 || !chunk.is_multiple_of(4096) || chunk > 64 << 20 {
        bail!("--chunk {chunk}: must be a multiple of 4096 bytes, at most 64M");
    }
    let dst_offset = a.dst_offset.unwrap_or(a.offset);
    let journal_dir = match a.journal_dir.clone() {
        Some(d) => d,
        None => journal::default_dir()?,
    };
    journal::set_wait(a.wait);
    // a run killed earlier may have left a range changed
    if !recover_journals(&journal_dir, false, true) {
        bail!(
            "a journal in {} could not be restored (above); fix that first (`p2pdoctor restore`), nothing was written",
            journal_dir.display()
        );
    }
    let write_ok = match (&a.dst, &a.write) {
        (None, Some(_)) => bail!("--write names a device to write, but there is no DST"),
        (None, None) => None,
        (Some(dst), None) => bail!(
            "copying to {} would overwrite it; to allow it, name it again with --write {} (its range is saved first and restored after)",
            dst.display(),
            dst.display()
        ),
        (Some(dst), Some(w)) => {
            let (dev, range) = parse_write(w)?;
            if !same_file(&dev, dst) {
                bail!(
                    "--write {} does not name DST ({}); writes happen only to the device named by both",
                    dev.display(),
                    dst.display()
                );
            }
            Some(range)
        }
    };
    let src = Target::open(&a.src, false, a.force)?;
    let avail = src.size.saturating_sub(a.offset);
    let size = match a.size {
        Some(s) => s,
        None => (64u64 << 20).min(avail / 4096 * 4096),
    };
    src.check_range(a.offset, size)
        .map_err(anyhow::Error::msg)?;
    let dst = match &a.dst {
        Some(d) => {
            let t = Target::open(d, true, a.force)?;
            t.check_range(dst_offset, size)
                .map_err(anyhow::Error::msg)?;
            if let Some(Some((off, len))) = write_ok
                && (dst_offset < off || dst_offset + size > off + len)
            {
                bail!(
                    "the write range {dst_offset}..{} of {} is outside what --write allows ({off}..{})",
                    dst_offset + size,
                    d.display(),
                    off + len
                );
            }
            if src.identity == t.identity
                && a.offset < dst_offset + size
                && dst_offset < a.offset + size
            {
                bail!(
                    "SRC and DST are the same device and the ranges overlap; pick --dst-offset past the source range"
                );
            }
            Some(t)
        }
        None => None,
    };
    let via = if a.host {
        Via::Host
    } else {
        resolve_via(a.via.as_deref().expect("clap requires --via or --host"))?
    };
    let params = Params {
        chunk: chunk as usize,
        qd: a.threads.unwrap_or(a.qd) as usize,
        engine: if a.threads.is_some() {
            crate::confirm::engine::EngineKind::Threads
        } else {
            a.engine.into()
        },
        size,
        duration: a.duration,
        src_offset: a.offset,
        dst_offset,
        repeat: a.repeat,
        verify: !a.no_verify,
        baseline: !a.no_baseline,
        progress: !a.quiet,
    };
    let shape = match &dst {
        Some(d) => Shape::Copy { src: &src, dst: d },
        None => Shape::Read { src: &src },
    };
    crate::confirm::signal::install();
    let report = copy::run(&shape, &via, &params, &journal_dir);
    let mut buf = Vec::new();
    match a.format {
        CopyFormat::Json => crate::render::copy_json::render(&report, &mut buf)?,
        CopyFormat::Text => crate::render::copy_text::render(
            &report,
            a.output.is_none() && super::color(global),
            &mut buf,
        )?,
    }
    write_output(a.output.as_deref(), &buf, true)?;
    Ok(exit_code(&report))
}

/// The exit status of an experiment.
pub fn exit_code(r: &CopyReport) -> i32 {
    if r.restore.as_ref().is_some_and(|x| !x.restored) {
        return EXIT_TOOL_FAILURE;
    }
    match r.outcome {
        Outcome::Ok => 0,
        Outcome::Refused | Outcome::Mismatch => 2,
        Outcome::Error => EXIT_TOOL_FAILURE,
        Outcome::Interrupted => crate::confirm::signal::EXIT_INTERRUPTED,
    }
}

/// `p2pdoctor restore`.
pub fn restore(global: &GlobalArgs, a: RestoreArgs) -> Result<i32> {
    require_live(global, "restore")?;
    let dir = match a.journal_dir {
        Some(d) => d,
        None => journal::default_dir()?,
    };
    Ok(if recover_journals(&dir, a.force, false) {
        0
    } else {
        EXIT_TOOL_FAILURE
    })
}
