//! `check` for people: a header, a one-line verdict, findings by severity
//! with a fix each, and a pair matrix in the spirit of `nvidia-smi topo -m`.
//! Also `explain <ID>` (like `rustc --explain`) and `rules`.

use std::collections::HashMap;
use std::io::{self, Write};

use super::RenderOptions;
use super::style::{Painter, TerminalSafe};
use super::wrap;
use crate::diagnose::{
    Catalog, Diagnosis, Finding, Fix, MapType, Pair, RuleInfo, Severity, Status,
};
use crate::pci::Bdf;

/// The short code of a pair cell: `B4`, `H6*`, `N4`, with `?` when a
/// register the decision depends on could not be read.
pub fn cell(p: Pair<'_>) -> String {
    path_cell(p.verdict())
}

/// A matrix cell: the kernel's decision and distance, `*` for ACS
/// redirect on the path, `?` where a register could not be read.
fn path_cell(v: &crate::diagnose::Verdict) -> String {
    let code = match v.map_type {
        MapType::BusAddr => 'B',
        MapType::ThruHostBridge => 'H',
        MapType::NotSupported => 'N',
    };
    let mut s = format!("{code}{}", v.distance);
    if !v.acs_redirect.is_empty() {
        s.push('*');
    }
    if !v.certain() {
        s.push('?');
    }
    s
}

fn severity_mark(p: &Painter, s: Severity) -> String {
    match s {
        Severity::Error => p.bad("✗"),
        Severity::Warning => p.warn("!"),
        Severity::Info => p.accent("·"),
    }
}

/// `text` wrapped to `width` after `first` (then `rest`), each line's text
/// painted by `paint` (the prefixes are not).
fn para(
    out: &mut dyn Write,
    width: Option<usize>,
    first: &str,
    rest: &str,
    text: &str,
    paint: &dyn Fn(&str) -> String,
) -> io::Result<()> {
    para_label(out, width, first, first, rest, text, paint)
}

/// [`para`] whose first prefix is shown painted (`shown`) but measured
/// as `plain`.
fn para_label(
    out: &mut dyn Write,
    width: Option<usize>,
    plain: &str,
    shown: &str,
    rest: &str,
    text: &str,
    paint: &dyn Fn(&str) -> String,
) -> io::Result<()> {
    for (i, line) in wrap::wrap(text, width, plain, rest).iter().enumerate() {
        let (prefix, measured) = if i == 0 { (shown, plain) } else { (rest, rest) };
        let body = line.strip_prefix(measured).unwrap_or(line);
        writeln!(out, "{prefix}{}", paint(body))?;
    }
    Ok(())
}

/// A fix: its prose wrapped; each command, then each persistence command,
/// whole on a line of its own (ready to paste: nothing before or after it).
fn write_fix(p: &Painter, fix: &Fix, width: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
    let label = format!("    {} ", p.good("fix:"));
    para_label(
        out,
        width,
        "    fix: ",
        &label,
        "         ",
        &fix.text,
        &|t| t.to_string(),
    )?;
    for c in &fix.commands {
        writeln!(out, "{}      {c}", wrap::NOWRAP)?;
    }
    if fix.kernel_params.is_empty() {
        return Ok(());
    }
    let params = fix.params_line();
    para_label(
        out,
        width,
        "    boot with: ",
        &format!("    {} ", p.good("boot with:")),
        "      ",
        &params,
        &|t| t.to_string(),
    )?;
    let detected = fix.persist.iter().any(|x| x.detected);
    if !detected && !fix.persist.is_empty() {
        para(
            out,
            width,
            "      ",
            "      ",
            "to keep it across reboots (no boot loader recognised under the root: the one this machine uses):",
            &|t| p.dim(t),
        )?;
    }
    for x in &fix.persist {
        let head = if detected {
            format!("to keep it across reboots, with {}:", x.label)
        } else {
            format!("{}:", x.label)
        };
        para(out, width, "      ", "        ", &head, &|t| p.dim(t))?;
        for c in &x.commands {
            writeln!(out, "{}        {c}", wrap::NOWRAP)?;
        }
    }
    Ok(())
}

fn write_finding(
    p: &Painter,
    f: &Finding,
    width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let status = match f.status {
        Status::Predicted => String::new(),
        other => format!(" [{}]", other.as_str()),
    };
    let id = match f.severity {
        Severity::Error => p.bad(&f.rule),
        Severity::Warning => p.warn(&f.rule),
        Severity::Info => p.accent(&f.rule),
    };
    writeln!(
        out,
        "  {} {id} {}{}",
        severity_mark(p, f.severity),
        p.bold(&f.name),
        p.dim(&status)
    )?;
    para(out, width, "    ", "    ", &f.message, &|t| t.to_string())?;
    for e in &f.evidence {
        para(out, width, "    ", "      ", e, &|t| p.dim(t))?;
    }
    if let Some(fix) = &f.fix {
        write_fix(p, fix, width, out)?;
    }
    Ok(())
}

fn write_header(d: &Diagnosis, p: &Painter, source: &str, out: &mut dyn Write) -> io::Result<()> {
    let h = &d.header;
    let kernel = match (&h.kernel_release, h.kernel_assumed) {
        (Some(r), false) => r.clone(),
        (Some(r), true) => format!("{r} (unparsable; rules of {} assumed)", h.kernel_model),
        (None, _) => format!("unknown (rules of {} assumed)", h.kernel_model),
    };
    writeln!(
        out,
        "{}",
        p.bold(&format!(
            "p2pdoctor check · host {} · kernel {kernel}",
            h.hostname.as_deref().unwrap_or("(unknown)")
        ))
    )?;
    // Only when live evidence overrode the release's gates (the JSON
    // always carries the basis).
    for b in h.kernel_basis.iter().skip(1) {
        writeln!(out, "  kernel: {b}")?;
    }
    if let Some(cpu) = &h.cpu {
        writeln!(out, "  cpu:    {cpu}")?;
    }
    writeln!(out, "  iommu:  {}", h.iommu.describe)?;
    let p2p = match (h.p2pdma.config, h.p2pdma.user_space) {
        (Some(true), Some(true)) => p.good(&h.p2pdma.describe),
        (Some(false), _) | (_, Some(false)) => p.bad(&h.p2pdma.describe),
        _ => p.warn(&h.p2pdma.describe),
    };
    writeln!(out, "  p2pdma: {p2p}")?;
    if let Some(v) = &h.virtualization {
        writeln!(
            out,
            "  vm:     {}",
            p.warn(&format!(
                "guest of {}: every verdict below is about the hypervisor's virtual topology (P2P110)",
                v.hypervisor
            ))
        )?;
    }
    let a = &h.acs_parameters;
    if let Some(v) = &a.disable_acs_redir {
        writeln!(out, "  acs:    pci=disable_acs_redir={v}")?;
    }
    if let Some(v) = &a.config_acs {
        writeln!(out, "  acs:    pci=config_acs={v}")?;
    }
    if d.all_pairs_implied {
        writeln!(
            out,
            "  pairs:  every DMA-capable endpoint taken as a hypothetical provider (the input shows no p2pmem state)"
        )?;
    }
    writeln!(out, "{}", p.dim(&format!("source: {source}")))
}

type Cells = HashMap<(usize, usize), (crate::diagnose::PathId, bool)>;

/// Merges rows and columns of the pair matrix that read the same: units
/// whose cells to every other unit are equal, both ways, and that show the
/// same cell among themselves (devices below the ports of one switch, say).
/// Returns the merged units, one representative pair per cell, and the
/// rows. Past a few hundred units the comparison (cubic) is skipped.
fn merge_alike<'a>(
    units: Vec<Vec<&'a crate::diagnose::DeviceSummary>>,
    cells: &Cells,
    rows: &[usize],
    paths: &[crate::diagnose::PairPath],
) -> (
    Vec<Vec<&'a crate::diagnose::DeviceSummary>>,
    Cells,
    Vec<usize>,
) {
    const MOST: usize = 400;
    let n = units.len();
    if !(2..=MOST).contains(&n) {
        return (units, cells.clone(), rows.to_vec());
    }
    // Each cell as the text it shows, interned; u32::MAX where none.
    let mut texts: HashMap<String, u32> = HashMap::new();
    let mut m = vec![vec![u32::MAX; n]; n];
    for (&(r, c), &(path, _)) in cells {
        let t = path_cell(&paths[path as usize].verdict);
        let next = texts.len() as u32;
        m[r][c] = *texts.entry(t).or_insert(next);
    }
    // Greedy: a unit joins the first group it reads the same as.
    let mut groups: Vec<(Vec<usize>, Option<u32>)> = Vec::new();
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    for u in 0..n {
        let fits = |g: &(Vec<usize>, Option<u32>)| -> bool {
            let r = g.0[0];
            if m[u][u] != m[r][r] || m[u][r] != m[r][u] {
                return false;
            }
            let inner = g.1.unwrap_or(m[u][r]);
            // Several devices in one unit show their own pairs on the
            // diagonal: they must read as the pairs across the group.
            let multi = units[u].len() > 1 || g.0.iter().any(|&x| units[x].len() > 1);
            if multi && m[u][u] != inner {
                return false;
            }
            (0..n).filter(|&w| w != u).all(|w| {
                if g.0.contains(&w) {
                    m[u][w] == inner && m[w][u] == inner
                } else {
                    m[u][w] == m[r][w] && m[w][u] == m[w][r]
                }
            })
        };
        match groups.iter().position(fits) {
            Some(g) => {
                let r = groups[g].0[0];
                groups[g].1.get_or_insert(m[u][r]);
                groups[g].0.push(u);
                group_of[u] = Some(g);
            }
            None => {
                groups.push((vec![u], None));
                group_of[u] = Some(groups.len() - 1);
            }
        }
    }
    let merged: Vec<Vec<&crate::diagnose::DeviceSummary>> = groups
        .iter()
        .map(|(members, _)| {
            members
                .iter()
                .flat_map(|&x| units[x].iter().copied())
                .collect()
        })
        .collect();
    let mut out: Cells = HashMap::new();
    for (g, (gm, _)) in groups.iter().enumerate() {
        for (h, (hm, _)) in groups.iter().enumerate() {
            // Between two groups their first members' cell; inside a
            // group a cell between two of its units (or the unit's own).
            let (r, c) = if g != h || gm.len() == 1 {
                (gm[0], hm[0])
            } else {
                (gm[0], gm[1])
            };
            if let Some(&cell) = cells.get(&(r, c)) {
                out.insert((g, h), cell);
            }
        }
    }
    let mut merged_rows: Vec<usize> = Vec::new();
    for &r in rows {
        let g = group_of[r].expect("every unit is in a group");
        if !merged_rows.contains(&g) {
            merged_rows.push(g);
        }
    }
    (merged, out, merged_rows)
}

/// Above this many devices the pair matrix shows groups of devices that
/// sit alike, not every device.
const GROUP_ABOVE: usize = 32;
/// The most rows and columns the pair matrix shows.
const MAX_UNITS: usize = 48;

fn write_matrix(
    d: &Diagnosis,
    p: &Painter,
    wrap_width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    if d.pairs.is_empty() {
        writeln!(out, "\n{}", p.bold("pairs"))?;
        let why = if d.devices.is_empty() {
            "no provider of P2P memory and no DMA-capable endpoint pair to predict"
        } else {
            "no pair to predict (run with --all-pairs to take every endpoint as a provider)"
        };
        return writeln!(out, "  {why}");
    }
    // Rows and columns: a device each, or, on a large machine, a group of
    // devices that sit alike (every pair of theirs shares its path with
    // the same pair of any other member: PairTable::classes).
    let grouped = d.devices.len() > GROUP_ABOVE;
    let mut units: Vec<Vec<&crate::diagnose::DeviceSummary>> = Vec::new();
    let mut unit_of: HashMap<Bdf, usize> = HashMap::new();
    let mut by_class: HashMap<u32, usize> = HashMap::new();
    let classes: HashMap<Bdf, u32> = d.pairs.classes().collect();
    for dev in &d.devices {
        let class = classes.get(&dev.bdf).copied().filter(|_| grouped);
        let u = match class.and_then(|c| by_class.get(&c)) {
            Some(&u) => u,
            None => {
                units.push(Vec::new());
                if let Some(c) = class {
                    by_class.insert(c, units.len() - 1);
                }
                units.len() - 1
            }
        };
        units[u].push(dev);
        unit_of.insert(dev.bdf, u);
    }
    // One pair per (row, column): a pair of two functions where a group
    // has two, else the provider with itself.
    let mut cells: Cells = HashMap::new();
    let mut rows: Vec<usize> = Vec::new();
    let mut is_row = vec![false; units.len()];
    for pr in &d.pairs {
        let (Some(&r), Some(&c)) = (unit_of.get(&pr.provider()), unit_of.get(&pr.client())) else {
            continue;
        };
        if !is_row[r] {
            is_row[r] = true;
            rows.push(r);
        }
        let itself = pr.provider() == pr.client();
        let e = cells.entry((r, c)).or_insert((pr.path_id(), itself));
        if e.1 && !itself {
            *e = (pr.path_id(), false);
        }
    }
    let paths = d.pairs.paths();
    if grouped {
        (units, cells, rows) = merge_alike(units, &cells, &rows, paths);
    }
    let shown_units = units.len().min(MAX_UNITS);
    rows.retain(|&r| r < shown_units);
    let cell_at = |r: usize, c: usize| -> String {
        match cells.get(&(r, c)) {
            Some(&(path, _)) => path_cell(&paths[path as usize].verdict),
            // The provider with itself is a pair the kernel computes too
            // (distance 0); X only where no such pair was predicted.
            None if r == c && units[r].len() == 1 => "X".to_string(),
            None => "-".to_string(),
        }
    };
    let label = |u: usize| format!("[{u}]");
    let mut shown: Vec<String> = Vec::new();
    for &r in &rows {
        for c in 0..shown_units {
            shown.push(cell_at(r, c));
        }
    }
    let width = shown
        .iter()
        .map(|c| c.chars().count())
        .chain((0..shown_units).map(|u| label(u).len()))
        .max()
        .unwrap_or(3)
        .max(3);
    let row_label_width = rows.iter().map(|&r| label(r).len()).max().unwrap_or(3);

    writeln!(
        out,
        "\n{}",
        p.bold(if grouped {
            "pairs (rows: providers, columns: clients, each a group of devices that sit alike; the kernel's decision and distance)"
        } else {
            "pairs (rows: providers, columns: clients; the kernel's decision and distance)"
        })
    )?;
    let mut head = format!("  {:row_label_width$}", "");
    for u in 0..shown_units {
        head.push_str(&format!("  {:>width$}", label(u)));
    }
    writeln!(out, "{}{}", wrap::NOWRAP, head.trim_end())?;
    for &r in &rows {
        let mut line = format!("  {:row_label_width$}", label(r));
        for c in 0..shown_units {
            let c = cell_at(r, c);
            let padded = format!("{c:>width$}");
            let painted = match c.chars().next() {
                Some('B') => p.good(&padded),
                Some('H') => p.warn(&padded),
                Some('N') => p.bad(&padded),
                _ => p.dim(&padded),
            };
            line.push_str("  ");
            line.push_str(&painted);
        }
        writeln!(out, "{}{}", wrap::NOWRAP, line.trim_end())?;
    }
    writeln!(out)?;
    for (i, members) in units.iter().take(shown_units).enumerate() {
        let dev = members[0];
        let line = if let [one] = members.as_slice() {
            let mut parts = vec![one.bdf.to_string()];
            if one.provider {
                parts.push(p.good("provider"));
            }
            if !one.block_devices.is_empty() {
                parts.push(one.block_devices.join(","));
            }
            parts.push(one.name.clone());
            if let Some(n) = one.numa_node {
                parts.push(format!("numa {n}"));
            }
            parts.join(" · ")
        } else {
            // A group: its span, what it holds, and what its members share.
            let mut parts = vec![format!(
                "{} … {} ({} devices)",
                dev.bdf,
                members[members.len() - 1].bdf,
                members.len()
            )];
            let providers = members.iter().filter(|m| m.provider).count();
            if providers > 0 {
                parts.push(p.good(&format!(
                    "{providers} {}",
                    if providers == 1 {
                        "provider"
                    } else {
                        "providers"
                    }
                )));
            }
            let mut names: Vec<(&str, usize)> = Vec::new();
            for m in members {
                match names.iter_mut().find(|(n, _)| *n == m.name) {
                    Some(e) => e.1 += 1,
                    None => names.push((&m.name, 1)),
                }
            }
            parts.push(if names.len() == 1 {
                names[0].0.to_string()
            } else {
                names
                    .iter()
                    .map(|(n, k)| format!("{k}× {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            if let Some(n) = dev
                .numa_node
                .filter(|n| members.iter().all(|m| m.numa_node == Some(*n)))
            {
                parts.push(format!("numa {n}"));
            }
            parts.join(" · ")
        };
        writeln!(out, "  [{i}] {line}")?;
    }
    if units.len() > shown_units {
        writeln!(
            out,
            "  {} more {} left out (the matrix shows {shown_units}; --format json has every pair)",
            units.len() - shown_units,
            if grouped { "groups" } else { "devices" }
        )?;
    }
    writeln!(out, "\n{}", p.bold("legend"))?;
    let has = |c: char| shown.iter().any(|s| s.starts_with(c));
    let mut distances: Vec<u32> = cells
        .iter()
        .filter(|((r, c), _)| *r < shown_units && *c < shown_units)
        .map(|(_, &(path, _))| paths[path as usize].verdict.distance)
        .collect();
    distances.sort_unstable();
    distances.dedup();
    let distances: Vec<String> = distances.iter().map(|x| x.to_string()).collect();
    let self_cell = shown.iter().any(|s| s == "X");
    let missing_cell = shown.iter().any(|s| s == "-");
    let mut legend: Vec<(&str, String)> = Vec::new();
    if has('B') {
        legend.push(("B<n>", "bus address: the traffic turns around below a common bridge or switch, the kernel maps the peer's bus address".into()));
    }
    if has('H') {
        legend.push(("H<n>", "through the host bridge: allowed, mapped like ordinary DMA (through the IOMMU when it translates)".into()));
    }
    if has('N') {
        legend.push((
            "N<n>",
            "not supported: the kernel refuses the pair, the I/O fails".into(),
        ));
    }
    legend.push((
        "<n>",
        format!(
            "the kernel's distance: bridges crossed from each device up to where their paths meet, summed (0: a provider with itself, 2: functions of one device, 4: below one switch); shown here: {}",
            distances.join(", ")
        ),
    ));
    if shown.iter().any(|s| s.contains('*')) {
        legend.push(("*", "ACS redirect on the path: the kernel sends the pair through the root complex (see P2P301)".into()));
    }
    if shown.iter().any(|s| s.contains('?')) {
        legend.push((
            "?",
            "depends on registers that could not be read (inconclusive)".into(),
        ));
    }
    if self_cell {
        legend.push(("X", "the device itself (no pair predicted for it)".into()));
    }
    if missing_cell {
        legend.push((
            "-",
            "no pair predicted (the column is not a client of this provider)".into(),
        ));
    }
    legend.push((
        "[i]",
        if grouped {
            "a group of devices that sit alike (each pair of theirs gets the same answer), listed above the legend by its number".into()
        } else {
            "a device, listed above the legend by its number".into()
        },
    ));
    write_legend(out, wrap_width, &legend)
}

/// Legend entries, the symbol in a column of its own and the meaning
/// wrapped beside it.
fn write_legend(
    out: &mut dyn Write,
    width: Option<usize>,
    entries: &[(&str, String)],
) -> io::Result<()> {
    let w = entries
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, text) in entries {
        let first = format!("  {k:<w$}  ");
        let rest = " ".repeat(w + 4);
        for line in wrap::wrap(text, width, &first, &rest) {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

/// The whole report.
pub fn render(d: &Diagnosis, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut wrapped = wrap::Wrapper::new(out, opts.width);
    let out = &mut TerminalSafe::new(&mut wrapped);
    let p = Painter {
        enabled: opts.color,
    };
    write_header(d, &p, &opts.source, out)?;
    write_verdict(d, &p, out)?;
    write_findings(d, &p, opts.width, out)?;
    write_matrix(d, &p, opts.width, out)?;
    write_class_matrix(d, &p, opts.width, out)?;
    super::bandwidth_text::write(d, &p, out)?;
    write_vendor(d, &p, out)?;
    write_confirm(d, &p, out)?;
    if !d.limitations.is_empty() {
        writeln!(out)?;
        for l in &d.limitations {
            writeln!(out, "{} {l}", p.warn("note:"))?;
        }
    }
    writeln!(
        out,
        "\n{}",
        p.dim("p2pdoctor explain <ID> tells more about a rule; --format json for scripts")
    )?;
    writeln!(out, "{}", p.bold(&summary_line(d)))
}

/// The line that closes the report: the verdict's tier, the counts of
/// findings and pairs.
pub fn summary_line(d: &Diagnosis) -> String {
    let s = &d.summary;
    let mut parts = vec![
        format!(
            "{} ({})",
            s.verdict.predicted.as_str(),
            s.verdict.established()
        ),
        format!(
            "{} {}, {} {}, {} info",
            s.errors,
            if s.errors == 1 { "error" } else { "errors" },
            s.warnings,
            if s.warnings == 1 {
                "warning"
            } else {
                "warnings"
            },
            s.info
        ),
        format!(
            "pairs: {} allowed, {} refused",
            s.bus_addr + s.thru_host_bridge,
            s.not_supported
        ),
    ];
    if s.inconclusive > 0 {
        parts.insert(2, format!("{} inconclusive", s.inconclusive));
    }
    if s.suppressed > 0 {
        parts.push(format!("{} suppressed", s.suppressed));
    }
    if !s.verdict.caveats.is_empty() {
        parts.push(format!(
            "{} {} above",
            s.verdict.caveats.len(),
            if s.verdict.caveats.len() == 1 {
                "caveat"
            } else {
                "caveats"
            }
        ));
    }
    format!("summary: {}", parts.join(" · "))
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The verdict: counts, then what established it (the kernel's rules or a
/// transfer), its caveats, and what the selection left out.
fn write_verdict(d: &Diagnosis, p: &Painter, out: &mut dyn Write) -> io::Result<()> {
    use crate::diagnose::select::HiddenReason;
    use crate::diagnose::{Level, Verified};
    let s = &d.summary;
    let verdict = match s.verdict.predicted {
        Level::Errors => p.bad(&format!("✗ {}", s.headline)),
        Level::Warnings => p.warn(&format!("! {}", s.headline)),
        Level::Clear => p.good(&format!("✓ {}", s.headline)),
    };
    writeln!(out, "\nverdict: {verdict}")?;
    let tier = match &s.verdict.verified {
        None => "predicted by the kernel's rules; not verified by a transfer (check --confirm tries the pairs)".to_string(),
        Some(v) => {
            let what = match v.outcome {
                Verified::AsPredicted => p.good("verified by a transfer: as predicted"),
                Verified::DataMismatch => {
                    p.bad("a transfer moved data that did not verify (see the experiments)")
                }
                Verified::NotAsPredicted => {
                    p.bad("a transfer did not do what the kernel's rules predicted (P2P902)")
                }
                Verified::Unsettled => p.warn(
                    "predicted by the kernel's rules; the transfers tried settled nothing",
                ),
            };
            format!(
                "{what}; {} of {} pairs tried settled, {} moved data that verified",
                v.pairs_settled, v.pairs_tried, v.pairs_ok
            )
        }
    };
    writeln!(out, "  {tier}")?;
    for c in &s.verdict.caveats {
        writeln!(out, "  {} {}", p.warn("caveat:"), c.message)?;
    }
    let sel = &d.selection;
    let chipset: Vec<String> = sel
        .hidden_devices
        .iter()
        .filter(|h| h.reason == HiddenReason::Chipset)
        .map(|h| h.bdf.to_string())
        .collect();
    let by = |r: HiddenReason| sel.hidden_findings.iter().filter(|h| h.reason == r).count();
    let mut hidden = Vec::new();
    if !chipset.is_empty() || by(HiddenReason::Chipset) > 0 {
        let devices = if chipset.is_empty() {
            String::new()
        } else {
            format!(" ({})", chipset.join(", "))
        };
        hidden.push(format!(
            "chipset functions{devices}: {} (--all-devices shows them)",
            count(by(HiddenReason::Chipset), "finding", "findings")
        ));
    }
    if by(HiddenReason::NotSelected) > 0 {
        hidden.push(format!(
            "{} about devices not selected",
            count(by(HiddenReason::NotSelected), "finding", "findings")
        ));
    }
    if sel.hidden_pairs > 0 {
        hidden.push(count(sel.hidden_pairs, "pair", "pairs"));
    }
    if by(HiddenReason::BelowMinSeverity) > 0 {
        hidden.push(format!(
            "{} below --min-severity {} (counted above)",
            count(by(HiddenReason::BelowMinSeverity), "finding", "findings"),
            sel.min_severity.as_str()
        ));
    }
    if !hidden.is_empty() {
        writeln!(
            out,
            "  {}",
            p.dim(&format!("not shown: {}", hidden.join("; ")))
        )?;
    }
    Ok(())
}

/// Findings by severity; info findings with nothing to do folded into one
/// line unless the selection shows them in full; then the suppressed ones.
fn write_findings(
    d: &Diagnosis,
    p: &Painter,
    width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    use crate::diagnose::select::nothing_to_do;
    let fold = d.selection.info_folded;
    for (sev, title) in [
        (Severity::Error, "errors"),
        (Severity::Warning, "warnings"),
        (Severity::Info, "info"),
    ] {
        let all: Vec<&Finding> = d.findings.iter().filter(|f| f.severity == sev).collect();
        if all.is_empty() {
            continue;
        }
        let (folded, list): (Vec<&Finding>, Vec<&Finding>) =
            all.into_iter().partition(|f| fold && nothing_to_do(f));
        writeln!(out, "\n{}", p.bold(title))?;
        for f in list {
            write_finding(p, f, width, out)?;
        }
        if !folded.is_empty() {
            let mut rules: Vec<&str> = folded.iter().map(|f| f.rule.as_str()).collect();
            rules.sort_unstable();
            rules.dedup();
            writeln!(
                out,
                "  {} {}",
                severity_mark(p, Severity::Info),
                p.dim(&format!(
                    "{} more info {} with nothing to do ({}): --verbose or --all-devices shows them in full",
                    folded.len(),
                    if folded.len() == 1 { "finding" } else { "findings" },
                    rules.join(", ")
                ))
            )?;
        }
    }
    if !d.suppressed.is_empty() {
        writeln!(out, "\n{}", p.bold("suppressed"))?;
        for x in &d.suppressed {
            let subjects = x
                .subjects
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(
                out,
                "  {} {} {}{}: {}",
                p.dim("-"),
                x.rule,
                x.name,
                if subjects.is_empty() {
                    String::new()
                } else {
                    format!(" ({subjects})")
                },
                x.reason
            )?;
            writeln!(out, "    {}", p.dim(&format!("by {}:{}", x.file, x.line)))?;
        }
    }
    Ok(())
}

/// GPUs, NICs, NVMe and accelerators with the path class between each
/// two, laid out like `nvidia-smi topo -m`.
fn write_class_matrix(
    d: &Diagnosis,
    p: &Painter,
    wrap_width: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(m) = &d.class_matrix else {
        return Ok(());
    };
    writeln!(
        out,
        "\n{}",
        p.bold(
            "topology (like nvidia-smi topo -m: the wiring, and where the kernel sends it instead)"
        )
    )?;
    let cell = |c: &crate::diagnose::matrix::MatrixCell| {
        let mut s = if c.path_class == c.effective_path_class {
            c.path_class.as_str().to_string()
        } else {
            format!(
                "{}>{}",
                c.path_class.as_str(),
                c.effective_path_class.as_str()
            )
        };
        if !c.certain {
            s.push('?');
        }
        s
    };
    let width = m
        .cells
        .iter()
        .flatten()
        .map(|c| cell(c).len())
        .chain(m.devices.iter().map(|d| d.label.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    let label_width = m.devices.iter().map(|d| d.label.len()).max().unwrap_or(4);
    let mut head = format!("  {:label_width$}", "");
    for dev in &m.devices {
        head.push_str(&format!("  {:>width$}", dev.label));
    }
    head.push_str("  NUMA  CPU affinity");
    writeln!(out, "{}{head}", wrap::NOWRAP)?;
    let detoured = m
        .cells
        .iter()
        .flatten()
        .any(|c| c.path_class != c.effective_path_class);
    let uncertain = m.cells.iter().flatten().any(|c| !c.certain);
    for (i, dev) in m.devices.iter().enumerate() {
        let mut line = format!("  {:label_width$}", dev.label);
        for (j, c) in m.cells[i].iter().enumerate() {
            let text = if i == j { "X".to_string() } else { cell(c) };
            let padded = format!("{text:>width$}");
            line.push_str("  ");
            line.push_str(&if text.contains('>') {
                p.warn(&padded)
            } else {
                padded
            });
        }
        let numa = dev
            .numa_node
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".into());
        line.push_str(&format!(
            "  {numa:>4}  {}",
            dev.cpu_affinity.as_deref().unwrap_or("-")
        ));
        writeln!(out, "{}{line}", wrap::NOWRAP)?;
    }
    writeln!(out)?;
    for dev in &m.devices {
        let names = if dev.names.is_empty() {
            String::new()
        } else {
            format!(" ({})", dev.names.join(", "))
        };
        writeln!(out, "  {:label_width$}  {}{names}", dev.label, dev.bdf)?;
    }
    if m.left_out > 0 {
        writeln!(
            out,
            "  {}",
            p.dim(&format!(
                "{} more devices left out (the matrix shows {}; --format json has them all in pairs)",
                m.left_out,
                crate::diagnose::matrix::MAX_DEVICES
            ))
        )?;
    }
    // One entry per symbol the matrix shows.
    let shown: Vec<String> = m.cells.iter().flatten().map(cell).collect();
    let mut classes: Vec<&str> = Vec::new();
    for c in m.cells.iter().flatten() {
        for k in [c.path_class.as_str(), c.effective_path_class.as_str()] {
            if !classes.contains(&k) {
                classes.push(k);
            }
        }
    }
    let mut legend: Vec<(&str, String)> = vec![("X", "the device itself".into())];
    for (k, what) in [
        (
            "PIX",
            "at most one PCIe bridge (one switch) between the two",
        ),
        (
            "PXB",
            "several PCIe bridges between, without crossing the host bridge",
        ),
        ("PHB", "through a PCIe host bridge (the root complex)"),
        ("NODE", "across the host bridges of one NUMA node"),
        ("SYS", "across NUMA nodes, over the CPU interconnect"),
    ] {
        if classes.contains(&k) {
            legend.push((k, what.into()));
        }
    }
    if detoured {
        legend.push(("A>B", "wired as A, but the kernel's decision (ACS redirect, or no common bridge) sends the traffic through the root complex: it behaves as B".into()));
    }
    if uncertain || shown.iter().any(|s| s.contains('?')) {
        legend.push(("?", "where the traffic goes depends on registers that could not be read (ACS Control without root)".into()));
    }
    legend.push((
        "NUMA",
        "the device's NUMA node (numa_node in sysfs; - when unknown)".into(),
    ));
    legend.push((
        "CPU affinity",
        "the CPUs near the device (local_cpulist; - when unknown)".into(),
    ));
    writeln!(out)?;
    write_legend(out, wrap_width, &legend)
}

/// `nvidia-smi topo -m` beside p2pdoctor: how each column was tied to a
/// PCI function, and a count line (the disagreements are a finding).
fn write_vendor(d: &Diagnosis, p: &Painter, out: &mut dyn Write) -> io::Result<()> {
    use crate::diagnose::Mapping;
    let Some(v) = &d.vendor_topology else {
        return Ok(());
    };
    writeln!(out, "\n{}", p.bold(&format!("{} beside p2pdoctor", v.tool)))?;
    writeln!(out, "  {}", p.dim(&format!("source: {}", v.source)))?;
    for dev in &v.devices {
        let how = match dev.mapping {
            Mapping::QueryGpu => "by nvidia-smi --query-gpu",
            Mapping::RdmaSysfs => "by /sys/class/infiniband",
            Mapping::Order => "guessed by PCI address order",
            Mapping::NotFound => "not among the PCI functions read",
        };
        let name = match &dev.rdma {
            Some(r) if *r != dev.name => format!("{} ({r})", dev.name),
            _ => dev.name.clone(),
        };
        let bdf = dev.bdf.map(|b| b.to_string()).unwrap_or_else(|| "?".into());
        writeln!(out, "  {name:<16} {bdf:<14} {}", p.dim(how))?;
    }
    let compared = v.pairs.iter().filter(|x| x.agree.is_some()).count();
    let differ = v.pairs.iter().filter(|x| x.agree == Some(false)).count();
    let nvlink = v
        .pairs
        .iter()
        .filter(|x| x.vendor.starts_with("NV"))
        .count();
    let line = format!(
        "{} pairs: {compared} compared, {} agree, {differ} differ{}{}",
        v.pairs.len(),
        compared - differ,
        if differ > 0 { " (P2P803)" } else { "" },
        if nvlink > 0 {
            format!("; {nvlink} over NVLink (not PCIe, not compared)")
        } else {
            String::new()
        },
    );
    writeln!(out, "  {}", if differ > 0 { p.warn(&line) } else { line })
}

/// `check --confirm`: what each pair's experiment did.
fn write_confirm(d: &Diagnosis, p: &Painter, out: &mut dyn Write) -> io::Result<()> {
    use crate::diagnose::PairOutcome;
    use crate::diagnose::settle::describe;
    let tried: Vec<Pair<'_>> = d.pairs.iter().filter(|x| x.confirm().is_some()).collect();
    if tried.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{}",
        p.bold("experiments (client → provider's P2P memory)")
    )?;
    for pair in tried {
        let c = pair.confirm().unwrap();
        let mark = match c.outcome {
            PairOutcome::Ok => p.good("ok      "),
            PairOutcome::Refused => p.bad("refused "),
            PairOutcome::Mismatch => p.bad("MISMATCH"),
            PairOutcome::Skipped => p.dim("skipped "),
            PairOutcome::Error => p.warn("error   "),
        };
        let agrees = match (c.agrees, c.outcome) {
            (Some(true), PairOutcome::Mismatch) => {
                p.dim(" (allowed, as predicted; the data did not arrive intact)")
            }
            (Some(true), _) => p.dim(" (as predicted)"),
            (Some(false), _) => p.warn(" (NOT as predicted: see P2P902)"),
            (None, _) if !c.settles_pair => p.warn(" (does not test this pair)"),
            (None, _) => String::new(),
        };
        writeln!(
            out,
            "  {mark} {} → {}  {}{agrees}",
            pair.client(),
            pair.provider(),
            describe(c)
        )?;
        for l in c.path() {
            writeln!(out, "           {}", p.dim(&format!("via: {l}")))?;
        }
        for l in c.log.iter().take(4) {
            writeln!(out, "           {}", p.dim(&format!("kernel: {l}")))?;
        }
        if c.log.len() > 4 {
            writeln!(
                out,
                "           {}",
                p.dim(&format!(
                    "… {} more kernel lines in --format json",
                    c.log.len() - 4
                ))
            )?;
        }
    }
    Ok(())
}

fn indented(text: &str, out: &mut dyn Write) -> io::Result<()> {
    for line in text.trim().lines() {
        if line.trim().is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "    {}", line.trim_end())?;
        }
    }
    Ok(())
}

/// `p2pdoctor explain <ID>`.
pub fn render_explain(r: &RuleInfo, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let out = &mut TerminalSafe::new(out);
    let p = Painter { enabled: color };
    writeln!(out, "{} {}: {}", p.bold(&r.id), p.bold(&r.name), r.title)?;
    writeln!(
        out,
        "{}",
        p.dim(&format!("severity: {} · family: {}", r.severity, r.family))
    )?;
    for (title, text) in [
        ("What it checks", &r.checks),
        ("Why it matters", &r.why),
        ("Example", &r.example),
        ("How to fix", &r.fix),
        ("How to confirm", &r.confirm),
    ] {
        writeln!(out, "\n{}", p.bold(title))?;
        indented(text, out)?;
    }
    if !r.references.is_empty() {
        writeln!(out, "\n{}", p.bold("References"))?;
        for reference in &r.references {
            writeln!(out, "    - {reference}")?;
        }
    }
    Ok(())
}

/// `p2pdoctor rules`.
pub fn render_rules(catalog: &Catalog, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let out = &mut TerminalSafe::new(out);
    let p = Painter { enabled: color };
    let name_w = catalog
        .rules
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4);
    writeln!(
        out,
        "{}",
        p.bold(&format!(
            "{:<6}  {:<name_w$}  {:<8}  TITLE",
            "ID", "NAME", "SEVERITY"
        ))
    )?;
    let mut family = "";
    for r in &catalog.rules {
        if r.family != family && !family.is_empty() {
            writeln!(out)?;
        }
        family = &r.family;
        let sev = format!("{:<8}", r.severity.as_str());
        let sev = match r.severity {
            Severity::Error => p.bad(&sev),
            Severity::Warning => p.warn(&sev),
            Severity::Info => p.accent(&sev),
        };
        writeln!(out, "{:<6}  {:<name_w$}  {sev}  {}", r.id, r.name, r.title)?;
    }
    writeln!(
        out,
        "\n{}",
        p.dim("p2pdoctor explain <ID or NAME> prints what a rule checks, why, and how to fix it")
    )
}
