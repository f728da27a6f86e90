//! `topo` and `snapshot`: the tree as it is read, and the capture of what
//! was read.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{open_root, stream_output, write_output};
use crate::cli::{GlobalArgs, SnapshotArgs, TopoArgs};
use crate::render::{Format, RenderOptions, topo_renderer};
use crate::scan::{self, ScanOptions};
use crate::topology::Tree;

/// `p2pdoctor topo`.
pub fn topo(global: &GlobalArgs, scan_options: &ScanOptions, args: TopoArgs) -> Result<i32> {
    let root = open_root(global.root.as_deref())?;
    let facts = scan::scan(&root, scan_options);
    let tree = Tree::build(facts);
    let format = if args.dot {
        Format::Dot
    } else {
        args.format.into()
    };
    let opts = RenderOptions {
        color: args.output.is_none() && format == Format::Text && super::color(global),
        source: root.describe(),
        width: crate::render::wrap::resolve(global.width, args.output.is_none()),
        ..Default::default()
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

/// `p2pdoctor snapshot`.
pub fn snapshot(global: &GlobalArgs, args: SnapshotArgs) -> Result<i32> {
    let root = open_root(global.root.as_deref())?;
    if root.evidence().is_some() {
        anyhow::bail!(
            "{} is lspci output, not a machine: there is nothing to capture; give the file itself to --root (e.g. `p2pdoctor --root FILE check`)",
            root.describe()
        );
    }
    let to_stdout = args.output == Path::new("-");
    if to_stdout && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!(
            "`-o -` writes the archive (binary) to standard output, which is a terminal; redirect it: `p2pdoctor snapshot -o - > host.tar.gz`"
        );
    }
    if !to_stdout {
        check_snapshot_output(&args.output, args.force)?;
    }
    let snap = crate::snapshot::capture(root, args.redact)?;
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
            crate::units::human_bytes(snap.archive.len() as u64),
            snap.source
        );
        for l in &snap.limitations {
            let _ = writeln!(err, "note: {}", crate::render::style::escape_controls(l));
        }
        if let Some(kinds) = &snap.redacted {
            let _ = if kinds.is_empty() {
                writeln!(err, "redacted: nothing identifying was found")
            } else {
                let list: Vec<String> = kinds
                    .iter()
                    .map(|k| format!("{} {}", k.count, k.what))
                    .collect();
                writeln!(
                    err,
                    "redacted (listed in the manifest): {}",
                    list.join("; ")
                )
            };
        }
    }
    Ok(0)
}

/// What may be at the path `snapshot -o` writes: nothing, or a regular
/// file (replaced only with --force). Anything else (a device, a FIFO, a
/// symbolic link such as /dev/stdout, a directory) is refused: replacing
/// it would turn /dev/null into a file, and --force never does.
fn check_snapshot_output(path: &Path, force: bool) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", path.display())),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        if force {
            return Ok(());
        }
        anyhow::bail!(
            "{} already exists; choose another name or pass --force to replace it",
            path.display()
        );
    }
    let what = if ft.is_symlink() {
        match std::fs::read_link(path) {
            Ok(t) => format!("a symbolic link (to {})", t.display()),
            Err(_) => "a symbolic link".to_string(),
        }
    } else if ft.is_dir() {
        "a directory".to_string()
    } else if ft.is_char_device() {
        "a character device".to_string()
    } else if ft.is_block_device() {
        "a block device".to_string()
    } else if ft.is_fifo() {
        "a FIFO".to_string()
    } else {
        "not a regular file".to_string()
    };
    anyhow::bail!(
        "{} exists and is {what}: the snapshot is written only as a new file or over a regular file (--force replaces only those); to write the archive to standard output, use `-o -`",
        path.display()
    )
}
