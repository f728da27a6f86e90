//! `check` and `report`: the diagnosis, settled by transfers when asked,
//! in the format asked for.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use super::{load_catalog, load_kernel_data, open_root, stream_output};
use crate::cli::{CheckArgs, GlobalArgs, ReportArgs, ReportFormat};
use crate::render::RenderOptions;
use crate::scan::{self, ScanOptions};
use crate::topology::Tree;

/// `p2pdoctor report`: `check --format html`, exiting 0 once written.
pub fn run_report(
    global: &GlobalArgs,
    scan_options: &ScanOptions,
    args: ReportArgs,
) -> Result<i32> {
    let mut check = args.check;
    if check.format != ReportFormat::Text || check.dot || check.summary {
        anyhow::bail!(
            "report always writes HTML; for another format use `p2pdoctor check --format FORMAT`"
        );
    }
    check.format = ReportFormat::Html;
    let code = run_check(global, scan_options, check)?;
    if code == crate::confirm::signal::EXIT_INTERRUPTED {
        return Ok(code);
    }
    Ok(0)
}

/// `p2pdoctor check`: the diagnosis's exit status (0, 1, 2).
pub fn run_check(
    global: &GlobalArgs,
    scan_options: &ScanOptions,
    mut args: CheckArgs,
) -> Result<i32> {
    if args.dot {
        args.format = ReportFormat::Dot;
    }
    // The rule tables first: a typo there is a failure before any scan.
    let catalog = load_catalog(args.rules_dir.as_deref())?;
    let kernel_data = load_kernel_data(args.rules_dir.as_deref())?;
    if args.confirm {
        super::copy::require_live(global, "check --confirm")?;
    }
    // Read the baseline and the policy first: a typo there is a failure
    // before any scan.
    let baseline = args
        .baseline
        .as_deref()
        .map(crate::baseline::BaselineFile::load)
        .transpose()?;
    if let (Some(b), Some(path)) = (&baseline, &args.baseline)
        && b.node.all_pairs != args.all_pairs
    {
        anyhow::bail!(
            "the baseline {} was recorded {} --all-pairs; run check {} --all-pairs too, or record it again",
            path.display(),
            if b.node.all_pairs { "with" } else { "without" },
            if b.node.all_pairs { "with" } else { "without" }
        );
    }
    let policy = args
        .policy
        .as_deref()
        .map(crate::policy::Policy::load)
        .transpose()?;
    let config = crate::config::load(args.config.as_deref(), &catalog)?;
    let root = open_root(global.root.as_deref())?;
    // lspci text shows no p2pmem state: every endpoint may be a provider.
    let implied = root.evidence().is_some() && !args.all_pairs;
    let opts = crate::diagnose::Options {
        all_pairs: args.all_pairs || implied,
        all_pairs_implied: implied,
        roles: args.role.iter().map(|&k| k.into()).collect(),
        catalog,
        kernel_data,
    };
    let started = std::time::Instant::now();
    let tree = Tree::build(scan::scan(&root, scan_options));
    let mut diagnosis = crate::diagnose::diagnose(&tree, &opts);
    let duration_seconds = started.elapsed().as_secs_f64();
    if args.confirm {
        let journal_dir = match args.journal_dir.clone() {
            Some(d) => d,
            None => crate::confirm::journal::default_dir()?,
        };
        crate::confirm::journal::set_wait(args.wait);
        if !super::copy::recover_journals(&journal_dir, false, true) {
            anyhow::bail!(
                "a journal in {} could not be restored (above); fix that first (`p2pdoctor restore`)",
                journal_dir.display()
            );
        }
        crate::confirm::signal::install();
        let copts = crate::confirm::pairs::ConfirmOptions {
            size: args.confirm_size,
            chunk: 128 << 10,
            qd: 4,
            engine: args.engine.into(),
            write: args.write.clone(),
            force: args.force,
            journal_dir,
            progress: true,
            // `require_live` above: the root is this machine's `/`.
            root_dir: PathBuf::from("/"),
        };
        if copts.size == 0 || !copts.size.is_multiple_of(4096) {
            anyhow::bail!("--confirm-size must be a non-zero multiple of 4096 bytes");
        }
        let results = crate::confirm::pairs::confirm(&diagnosis, &root, &copts);
        diagnosis = diagnosis.settle(results);
        if let Some(note) = crate::confirm::pairs::nothing_confirmed(&diagnosis) {
            eprintln!("{}", crate::render::style::escape_controls(&note));
        }
    }
    let mut stage_findings = Vec::new();
    if let Some(b) = &baseline {
        stage_findings.extend(crate::baseline::deviations(&b.node, &tree, &diagnosis));
    }
    if let Some(p) = &policy {
        stage_findings.extend(crate::policy::evaluate(p, &tree, &diagnosis));
    }
    if !stage_findings.is_empty() {
        diagnosis.findings.extend(stage_findings);
        diagnosis.resummarize();
    }
    // The baseline and the policy compared the whole machine above; the
    // selection only decides what is shown (and suppressions what counts).
    let selection = crate::diagnose::select::Selection {
        all_devices: args.all_devices,
        devices: args.device.clone(),
        providers: args.provider.clone(),
        clients: args.client.clone(),
        min_severity: args.min_severity.into(),
        verbose: args.verbose,
        suppress: config.map(|c| c.suppress).unwrap_or_default(),
    };
    let diagnosis =
        crate::diagnose::select::apply(diagnosis, &selection).map_err(anyhow::Error::msg)?;
    let render_opts = RenderOptions {
        color: args.output.is_none() && args.format == ReportFormat::Text && super::color(global),
        source: root.describe(),
        expand_pairs: args.expand_pairs,
        width: crate::render::wrap::resolve(global.width, args.output.is_none()),
    };
    // Written as it is rendered: the JSON of a million pairs is never
    // held whole in memory.
    stream_output(args.output.as_deref(), |buf| match args.format {
        _ if args.summary => {
            writeln!(
                crate::render::style::TerminalSafe::new(&mut *buf),
                "p2pdoctor: {}: {} ({})",
                diagnosis.summary.verdict.predicted.as_str(),
                diagnosis.summary.headline,
                diagnosis.summary.verdict.established(),
            )
        }
        ReportFormat::Text => crate::render::check_text::render(&diagnosis, &render_opts, buf),
        ReportFormat::Json => crate::render::check_json::render(&diagnosis, &render_opts, buf),
        ReportFormat::Junit => crate::render::check_junit::render(
            &diagnosis,
            &opts.catalog,
            args.fail_on.into(),
            &render_opts.source,
            buf,
        ),
        ReportFormat::Prometheus => {
            let unix_seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let stamp = crate::render::check_prometheus::RunStamp {
                unix_seconds,
                duration_seconds,
            };
            crate::render::check_prometheus::render(&diagnosis, stamp, buf)
        }
        ReportFormat::Dot => crate::render::picture::dot::render(&tree, &diagnosis, buf),
        ReportFormat::Svg => {
            crate::render::picture::svg::render(&tree, Some(&diagnosis), true, buf)
        }
        ReportFormat::Html => {
            crate::render::report_html::render(&tree, &diagnosis, &render_opts.source, buf)
        }
    })?;
    if crate::confirm::signal::interrupted() {
        return Ok(crate::confirm::signal::EXIT_INTERRUPTED);
    }
    Ok(diagnosis.exit_code(args.fail_on.into()))
}
