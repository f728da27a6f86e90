//! `diff`, `baseline` and `fleet`: one machine against another, against a
//! known-good record, or many against their majority.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{open_root, write_output};
use crate::cli::{
    BaselineArgs, DiffArgs, DiffFormat, EXIT_TOOL_FAILURE, FleetArgs, FleetFormat, GlobalArgs,
};
use crate::scan::{self, ScanOptions};
use crate::topology::Tree;

/// `p2pdoctor diff A B`: 0 the same, 1 differences.
pub fn run_diff(global: &GlobalArgs, scan_options: &ScanOptions, args: DiffArgs) -> Result<i32> {
    let opts = crate::diagnose::Options {
        all_pairs: args.all_pairs,
        ..Default::default()
    };
    let read = |path: &Path| -> Result<(Tree, crate::diagnose::Diagnosis, String)> {
        let root = open_root(Some(path)).with_context(|| format!("reading {}", path.display()))?;
        let tree = Tree::build(scan::scan(&root, scan_options));
        let diagnosis = crate::diagnose::diagnose(&tree, &opts);
        Ok((tree, diagnosis, root.describe()))
    };
    let (ta, da, na) = read(&args.a)?;
    let (tb, db, nb) = read(&args.b)?;
    let side = |tree, diagnosis, name| crate::compare::Side {
        name,
        tree,
        diagnosis,
    };
    let ignore: Vec<crate::compare::ChangeClass> = args.ignore.iter().map(|&c| c.into()).collect();
    let diff = crate::compare::diff(&side(&ta, &da, na), &side(&tb, &db, nb), &ignore);
    let mut buf = Vec::new();
    match args.format {
        DiffFormat::Text => crate::render::diff_text::render(
            &diff,
            args.output.is_none() && super::color(global),
            &mut buf,
        )?,
        DiffFormat::Json => crate::render::diff_json::render(&diff, &mut buf)?,
    }
    write_output(args.output.as_deref(), &buf, true)?;
    Ok(if diff.same() { 0 } else { 1 })
}

/// `p2pdoctor baseline -o FILE`.
pub fn run_baseline(
    global: &GlobalArgs,
    scan_options: &ScanOptions,
    args: BaselineArgs,
) -> Result<i32> {
    let to_stdout = args.output == Path::new("-");
    if !to_stdout && args.output.exists() && !args.force {
        anyhow::bail!(
            "{} already exists; choose another name or pass --force to replace it",
            args.output.display()
        );
    }
    let opts = crate::diagnose::Options {
        all_pairs: args.all_pairs,
        ..Default::default()
    };
    let root = open_root(global.root.as_deref())?;
    let tree = Tree::build(scan::scan(&root, scan_options));
    let diagnosis = crate::diagnose::diagnose(&tree, &opts);
    let file = crate::baseline::BaselineFile::new(crate::baseline::record(&tree, &diagnosis));
    let mut buf = serde_json::to_vec_pretty(&file)?;
    buf.push(b'\n');
    write_output((!to_stdout).then_some(args.output.as_path()), &buf, true)?;
    if !to_stdout {
        let mut err = anstream::stderr();
        let _ = writeln!(
            err,
            "wrote {} ({} devices, {} pairs, {} findings) from {}",
            args.output.display(),
            file.node.devices.len(),
            file.node.pairs.len(),
            file.node.findings.len(),
            root.describe()
        );
    }
    Ok(0)
}

/// `p2pdoctor fleet DIR|FILES...`: 0 no outliers, 1 outliers, 3 when a
/// snapshot could not be read.
pub fn run_fleet(global: &GlobalArgs, scan_options: &ScanOptions, args: FleetArgs) -> Result<i32> {
    let inputs = crate::fleet::inputs(&args.inputs)?;
    let opts = crate::diagnose::Options {
        all_pairs: args.all_pairs,
        ..Default::default()
    };
    // Names are not part of a fingerprint: skip the pci.ids lookups.
    let scan_options = ScanOptions {
        no_names: true,
        ..scan_options.clone()
    };
    let load = |path: &Path| -> Result<(Tree, crate::diagnose::Diagnosis)> {
        let root = open_root(Some(path))?;
        let tree = Tree::build(scan::scan(&root, &scan_options));
        let diagnosis = crate::diagnose::diagnose(&tree, &opts);
        Ok((tree, diagnosis))
    };
    let threads = args.jobs.map(|j| j as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let fleet = crate::fleet::run(&inputs, threads, &load);
    let mut buf = Vec::new();
    match args.format {
        FleetFormat::Text => crate::render::fleet_text::render(
            &fleet,
            args.output.is_none() && super::color(global),
            &mut buf,
        )?,
        FleetFormat::Json => crate::render::fleet_json::render(&fleet, &mut buf)?,
    }
    write_output(args.output.as_deref(), &buf, true)?;
    Ok(if !fleet.unreadable.is_empty() {
        EXIT_TOOL_FAILURE
    } else if fleet.outlier_nodes() > 0 {
        1
    } else {
        0
    })
}
