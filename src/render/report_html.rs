//! `p2pdoctor report` and `check --format html`: the support-ticket
//! attachment a person opens. One self-contained file: inline CSS, a small
//! inline script for hover details, the picture as inline SVG, no network,
//! no external scripts or fonts (a Content-Security-Policy forbids them).
//! Everything read from the machine is escaped.
//!
//! Sections: the verdict, the drawn topology, the pair matrix (hover a
//! cell for the kernel's decision and the pair's curve lights up), the
//! devices' topology classes, findings with their evidence and fixes,
//! confirm results with P2P-versus-host throughput bars, the kernel-log
//! lines, and the facts that could not be read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};

use super::picture::{self, edge_colour, escape};
use crate::diagnose::{Diagnosis, MapType, Pair};
use crate::topology::Tree;

/// Rows and columns of the pair matrix at most; the pair list below it
/// holds every pair.
const MATRIX_MAX: usize = 64;
/// Rows of the pair list at most.
const LIST_MAX: usize = 2000;

const CSS: &str = r#"
:root{--ok:#1e8449;--hb:#d68910;--no:#c0392b;--fg:#1b1f24;--mute:#5b6470;--line:#d7dbe0}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:var(--fg);margin:0;background:#f6f7f9}
header,section{background:#fff;margin:12px 16px;padding:12px 16px;border:1px solid var(--line);border-radius:8px}
h1{font-size:20px;margin:0 0 6px}h2{font-size:16px;margin:0 0 8px}
code,pre,.mono,td.cell{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-all;background:#f3f4f6;padding:8px;border-radius:4px;margin:4px 0}
.verdict{font-size:17px;font-weight:bold;padding:8px 12px;border-radius:6px;margin:8px 0}
.verdict.clear{background:#e3f4e8;color:var(--ok)}.verdict.warnings{background:#fdf2dc;color:#9a6300}.verdict.errors{background:#fbe4e1;color:var(--no)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dl.facts dt{color:var(--mute)}dl.facts dd{margin:0}
.picture{overflow:auto;max-height:90vh;border:1px solid var(--line);border-radius:4px}
.picture svg{display:block;max-width:100%;height:auto}.picture.full svg{max-width:none}
.picture svg path.pair.hl{stroke-width:6;stroke-opacity:1}
button{font:inherit;font-size:12px;margin-bottom:6px}
table{border-collapse:collapse}td,th{border:1px solid var(--line);padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
td.cell{text-align:center;cursor:default;min-width:44px}
td.bus_addr{background:#d5f0dc;color:var(--ok)}td.thru_host_bridge{background:#fbeccd;color:#8a5a00}td.not_supported{background:#f8d7d3;color:var(--no)}td.self{background:#eee;color:#888}
.scroll{overflow:auto;max-height:70vh}
.finding{border-left:5px solid var(--line);padding:6px 10px;margin:8px 0;background:#fafbfc}
.finding.error{border-color:var(--no)}.finding.warning{border-color:var(--hb)}.finding.info{border-color:#4a6fa5}
.finding .head{font-weight:bold}.finding .status{font-weight:normal;color:var(--mute)}
.fix{background:#eef6ee;padding:4px 8px;border-radius:4px;margin-top:4px}
.fix pre.cmd{margin:2px 0 2px 12px;white-space:pre-wrap;font-size:12px}
.caveat{margin:2px 0 6px;padding:4px 10px;border-left:3px solid #9a6300;background:#fdf8ec}
.bar{height:14px;border-radius:3px;display:inline-block;vertical-align:middle}
.bar.p2p{background:var(--ok)}.bar.host{background:#7f8c8d}
.mute{color:var(--mute)}
pre.kernel-log{max-height:420px;overflow:auto}pre.kernel-log mark{background:#fff3c4}
#tip{position:absolute;z-index:10;max-width:640px;background:#1b1f24;color:#fff;padding:6px 8px;border-radius:4px;font:12px/1.4 "DejaVu Sans Mono",Menlo,monospace;white-space:pre-wrap;pointer-events:none}
"#;

/// Hover details: any element with `data-tip`; a matrix cell with
/// `data-pair` lights the pair's curve in the picture. Marks the document
/// when it ran, so a test can tell it did.
const JS: &str = r#"
(function () {
  var tip = document.getElementById('tip');
  var lit = [];
  function unlight() { lit.forEach(function (p) { p.classList.remove('hl'); }); lit = []; }
  document.addEventListener('mouseover', function (e) {
    var t = e.target.closest ? e.target.closest('[data-tip]') : null;
    unlight();
    if (!t) { tip.hidden = true; return; }
    tip.textContent = t.getAttribute('data-tip');
    tip.hidden = false;
    var pair = t.getAttribute('data-pair');
    if (pair) {
      document.querySelectorAll('svg path.pair').forEach(function (p) {
        if (p.getAttribute('data-pair') === pair) { p.classList.add('hl'); lit.push(p); }
      });
    }
  });
  document.addEventListener('mousemove', function (e) {
    tip.style.left = (e.pageX + 14) + 'px';
    tip.style.top = (e.pageY + 14) + 'px';
  });
  var zoom = document.getElementById('zoom');
  zoom.addEventListener('click', function () {
    var full = document.getElementById('picture').classList.toggle('full');
    zoom.textContent = full ? 'fit to width' : 'full size';
  });
  document.documentElement.setAttribute('data-p2pdoctor-js', 'ok');
})();
"#;

/// A finding's fix: its words, then each command whole on a line of its
/// own (copy-pasteable), the kernel parameters and how to keep them.
fn fix_html(fix: &crate::diagnose::fix::Fix) -> String {
    let mut out = format!("<b>fix:</b> {}", escape(&fix.text));
    let mut code = |line: &str| {
        out.push_str(&format!("<pre class=\"cmd\">{}</pre>", escape(line)));
    };
    for c in &fix.commands {
        code(c);
    }
    if !fix.kernel_params.is_empty() {
        code(&format!("boot with: {}", fix.params_line()));
    }
    for p in fix.persist.iter().filter(|p| p.detected) {
        for c in &p.commands {
            code(c);
        }
    }
    out
}

fn pair_tip(p: Pair<'_>) -> String {
    let v = &p.verdict();
    let mut t = format!(
        "{} → {}\n{} ({}), distance {}\npath {} (behaves as {}), {} switch(es)",
        p.provider(),
        p.client(),
        v.map_type,
        v.map_type.kernel_name(),
        v.distance,
        p.path_class().as_str(),
        p.effective_path_class().as_str(),
        p.switches()
    );
    if let Some(c) = v.common_upstream {
        let _ = write!(t, "\ncommon upstream {c}");
    }
    if !v.acs_redirect.is_empty() {
        let l: Vec<String> = v.acs_redirect.iter().map(|b| b.to_string()).collect();
        let _ = write!(t, "\nACS redirect at {}", l.join(" "));
    }
    if let Some(b) = &p.bottleneck() {
        let _ = write!(
            t,
            "\nnarrowest link {} at {} ({:.1} GB/s)",
            b.link, b.bdf, b.gbytes_per_s
        );
    }
    if let Some(r) = &v.blocked_by {
        let _ = write!(t, "\nblocked: {r}");
    }
    for u in &v.unknown {
        let _ = write!(t, "\nunknown: {u}");
    }
    for m in p.kernel_messages() {
        let _ = write!(t, "\nkernel: {m}");
    }
    if let Some(c) = &p.confirm() {
        let _ = write!(t, "\nconfirm: {} ({})", c.outcome.as_str(), c.reason);
    }
    t
}

fn pair_key(p: Pair<'_>) -> String {
    let (a, b) = if p.provider_id() <= p.client_id() {
        (p.provider(), p.client())
    } else {
        (p.client(), p.provider())
    };
    format!("{a} {b}")
}

fn abbrev(m: MapType) -> &'static str {
    match m {
        MapType::BusAddr => "BUS",
        MapType::ThruHostBridge => "HB",
        MapType::NotSupported => "✗",
    }
}

/// The whole report.
pub fn render(tree: &Tree, d: &Diagnosis, source: &str, out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::with_capacity(64 * 1024 + tree.nodes.len() * 2048);
    let h = &d.header;
    let host = h.hostname.as_deref().unwrap_or("unknown host");
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>p2pdoctor report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<div id=\"tip\" hidden></div>\n",
        escape(host)
    );

    // Verdict and header.
    let _ = writeln!(s, "<header id=\"verdict\">");
    let _ = writeln!(s, "<h1>p2pdoctor report · {}</h1>", escape(host));
    let _ = writeln!(
        s,
        "<div class=\"verdict {0}\" data-verdict=\"{0}\">{0} ({1}): {2}</div>",
        d.summary.verdict.predicted.as_str(),
        d.summary.verdict.established(),
        escape(&d.summary.headline)
    );
    for c in &d.summary.verdict.caveats {
        let _ = writeln!(s, "<div class=\"caveat\">{}</div>", escape(&c.message));
    }
    s.push_str("<dl class=\"facts\">\n");
    let mut fact = |k: &str, v: &str| {
        let _ = writeln!(s, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    };
    fact("source", source);
    fact(
        "kernel",
        &format!(
            "{} (rules of {}{})",
            h.kernel_release.as_deref().unwrap_or("unknown"),
            h.kernel_model,
            if h.kernel_assumed {
                ", assumed: release unknown"
            } else {
                ""
            }
        ),
    );
    fact("cpu", h.cpu.as_deref().unwrap_or("unknown"));
    fact("iommu", &h.iommu.describe);
    fact("p2pdma", &h.p2pdma.describe);
    if let Some(v) = &h.virtualization {
        fact(
            "virtualization",
            &format!("{} ({})", v.hypervisor, v.evidence.join("; ")),
        );
    }
    fact(
        "generated by",
        &format!("p2pdoctor {}", env!("CARGO_PKG_VERSION")),
    );
    s.push_str("</dl>\n</header>\n");

    // The picture.
    s.push_str("<section id=\"topology\">\n<h2>Topology</h2>\n<p class=\"mute\">Hover a box or a curve for details. Curves are device pairs, coloured by the kernel's decision; red boxes are bridges that redirect peer traffic to the root complex.</p>\n<button type=\"button\" id=\"zoom\">full size</button>\n<div class=\"picture\" id=\"picture\">\n");
    let mut svg = Vec::new();
    picture::svg::render(tree, Some(d), false, &mut svg)?;
    s.push_str(&String::from_utf8_lossy(&svg));
    s.push_str("</div>\n</section>\n");

    pair_matrix(&mut s, d);
    class_matrix(&mut s, d);
    findings(&mut s, d);
    confirm(&mut s, d);

    // The kernel log.
    let _ = writeln!(s, "<section id=\"kernel-log\">\n<h2>Kernel log</h2>");
    if tree.kernel_log.is_empty() {
        s.push_str("<p class=\"mute\">No P2P-related kernel-log lines were read (not captured, or none printed).</p>\n");
    } else {
        let _ = writeln!(
            s,
            "<p class=\"mute\">{} lines; those about P2P, ACS, the IOMMU, AER and PCI errors are marked.</p>",
            tree.kernel_log.len()
        );
        s.push_str("<pre class=\"kernel-log\">");
        for l in &tree.kernel_log {
            let lower = l.to_ascii_lowercase();
            let marked = ["p2p", "acs", "dmar", "iommu", "amd-vi", "aer", "fault"]
                .iter()
                .any(|w| lower.contains(w));
            if marked {
                let _ = writeln!(s, "<mark>{}</mark>", escape(l));
            } else {
                let _ = writeln!(s, "{}", escape(l));
            }
        }
        s.push_str("</pre>\n");
    }
    s.push_str("</section>\n");

    unread(&mut s, tree, d);

    let _ = write!(s, "<script>{JS}</script>\n</body>\n</html>\n");
    out.write_all(s.as_bytes())
}

fn pair_matrix(s: &mut String, d: &Diagnosis) {
    let _ = writeln!(s, "<section id=\"pairs\">\n<h2>Pairs</h2>");
    if d.pairs.is_empty() {
        s.push_str("<p>No pairs to predict: no device exposes P2P memory. <code>p2pdoctor check --all-pairs</code> takes every endpoint as a provider.</p>\n</section>\n");
        return;
    }
    let providers: Vec<_> = {
        let mut seen = BTreeSet::new();
        d.pairs
            .iter()
            .filter(|p| seen.insert(p.provider()))
            .map(|p| p.provider())
            .collect()
    };
    let clients: Vec<_> = {
        let mut seen = BTreeSet::new();
        let mut c: Vec<_> = d
            .pairs
            .iter()
            .filter(|p| seen.insert(p.client()))
            .map(|p| p.client())
            .collect();
        c.sort();
        c
    };
    let by: BTreeMap<_, Pair<'_>> = d
        .pairs
        .iter()
        .map(|p| ((p.provider(), p.client()), p))
        .collect();
    let names: BTreeMap<_, _> = d.devices.iter().map(|x| (x.bdf, x)).collect();
    let _ = writeln!(
        s,
        "<p class=\"mute\">Rows: providers of P2P memory; columns: clients. BUS: bus address (peer to peer below a common bridge), HB: through the host bridge, ✗: refused; ? where facts could not be read. Hover a cell for the kernel's decision.{}</p>",
        if providers.len() > MATRIX_MAX || clients.len() > MATRIX_MAX {
            format!(
                " Only the first {MATRIX_MAX} providers and clients are shown ({} × {} in all); the list below holds every pair.",
                providers.len(),
                clients.len()
            )
        } else {
            String::new()
        }
    );
    s.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<tr><th>provider \\ client</th>");
    for c in clients.iter().take(MATRIX_MAX) {
        let tip = names
            .get(c)
            .map(|x| format!("{} {}", x.bdf, x.name))
            .unwrap_or_else(|| c.to_string());
        let _ = write!(
            s,
            "<th class=\"mono\" data-tip=\"{}\">{}</th>",
            escape(&tip),
            escape(&c.to_string())
        );
    }
    s.push_str("</tr>\n");
    for p in providers.iter().take(MATRIX_MAX) {
        let tip = names
            .get(p)
            .map(|x| format!("{} {}", x.bdf, x.name))
            .unwrap_or_else(|| p.to_string());
        let _ = write!(
            s,
            "<tr><th class=\"mono\" data-tip=\"{}\">{}</th>",
            escape(&tip),
            escape(&p.to_string())
        );
        for c in clients.iter().take(MATRIX_MAX) {
            match by.get(&(*p, *c)) {
                Some(r) => {
                    let self_pair = r.provider() == r.client();
                    let class = if self_pair {
                        format!("cell {} self", r.verdict().map_type.as_str())
                    } else {
                        format!("cell {}", r.verdict().map_type.as_str())
                    };
                    let _ = write!(
                        s,
                        "<td class=\"{class}\" data-tip=\"{}\" data-pair=\"{}\">{}{}</td>",
                        escape(&pair_tip(*r)),
                        escape(&pair_key(*r)),
                        abbrev(r.verdict().map_type),
                        if r.verdict().certain() { "" } else { "?" }
                    );
                }
                None => s.push_str("<td class=\"cell\"></td>"),
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table></div>\n");

    // Every pair, in a list.
    let _ = writeln!(
        s,
        "<details><summary>All {} pairs</summary><div class=\"scroll\"><table class=\"pair-list\">\n<tr><th>provider</th><th>client</th><th>map type</th><th>distance</th><th>path</th><th>ACS redirect at</th><th>narrowest link</th></tr>",
        d.pairs.len()
    );
    for p in d.pairs.iter().take(LIST_MAX) {
        let v = &p.verdict();
        let acs: Vec<String> = v.acs_redirect.iter().map(|b| b.to_string()).collect();
        let _ = writeln!(
            s,
            "<tr data-tip=\"{}\" data-pair=\"{}\"><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td style=\"color:{}\">{}{}</td><td>{}</td><td>{} → {}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            escape(&pair_tip(p)),
            escape(&pair_key(p)),
            p.provider(),
            p.client(),
            edge_colour(v.map_type),
            v.map_type,
            if v.certain() { "" } else { " (uncertain)" },
            v.distance,
            p.path_class().as_str(),
            p.effective_path_class().as_str(),
            escape(&acs.join(" ")),
            escape(
                &p.bottleneck()
                    .as_ref()
                    .map(|b| format!("{} ({:.1} GB/s)", b.link, b.gbytes_per_s))
                    .unwrap_or_default()
            )
        );
    }
    if d.pairs.len() > LIST_MAX {
        let _ = writeln!(
            s,
            "<tr><td colspan=\"7\">{} more pairs: <code>p2pdoctor check --format json</code> lists them all</td></tr>",
            d.pairs.len() - LIST_MAX
        );
    }
    s.push_str("</table></div></details>\n</section>\n");
}

fn class_matrix(s: &mut String, d: &Diagnosis) {
    let Some(m) = &d.class_matrix else { return };
    let _ = writeln!(
        s,
        "<section id=\"classes\">\n<h2>GPUs, NICs, NVMe and accelerators</h2>\n<p class=\"mute\">Like <code>nvidia-smi topo -m</code>: PIX at most one switch between, PXB several, PHB through a host bridge, NODE across host bridges of one NUMA node, SYS across NUMA nodes; A&gt;B: wired as A, but the kernel's decision sends the traffic through the root complex.</p>\n<div class=\"scroll\"><table class=\"class-matrix\">\n<tr><th></th>"
    );
    for dev in &m.devices {
        let _ = write!(
            s,
            "<th data-tip=\"{}\">{}</th>",
            escape(&format!("{} {}", dev.bdf, dev.names.join(", "))),
            escape(&dev.label)
        );
    }
    s.push_str("<th>NUMA</th><th>CPU affinity</th></tr>\n");
    for (i, dev) in m.devices.iter().enumerate() {
        let _ = write!(
            s,
            "<tr><th data-tip=\"{}\">{}</th>",
            escape(&format!("{} {}", dev.bdf, dev.names.join(", "))),
            escape(&dev.label)
        );
        for (j, c) in m.cells[i].iter().enumerate() {
            if i == j {
                s.push_str("<td class=\"cell self\">X</td>");
                continue;
            }
            let text = if c.path_class == c.effective_path_class {
                c.path_class.as_str().to_string()
            } else {
                format!(
                    "{}&gt;{}",
                    c.path_class.as_str(),
                    c.effective_path_class.as_str()
                )
            };
            let _ = write!(
                s,
                "<td class=\"cell\">{text}{}</td>",
                if c.certain { "" } else { "?" }
            );
        }
        let _ = writeln!(
            s,
            "<td>{}</td><td class=\"mono\">{}</td></tr>",
            dev.numa_node.map(|n| n.to_string()).unwrap_or_default(),
            escape(dev.cpu_affinity.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table></div>\n");
    if m.left_out > 0 {
        let _ = writeln!(s, "<p class=\"mute\">{} devices left out.</p>", m.left_out);
    }
    s.push_str("</section>\n");
}

fn findings(s: &mut String, d: &Diagnosis) {
    let _ = writeln!(s, "<section id=\"findings\">\n<h2>Findings</h2>");
    if d.findings.is_empty() {
        s.push_str("<p>No findings.</p>\n");
    }
    for f in &d.findings {
        let subjects: Vec<String> = f.subjects.iter().map(|b| b.to_string()).collect();
        let _ = writeln!(
            s,
            "<div class=\"finding {}\" data-rule=\"{}\">\n<div class=\"head\">{} {} {} <span class=\"status\">{} · {}</span></div>",
            f.severity.as_str(),
            escape(&f.rule),
            escape(f.severity.as_str()),
            escape(&f.rule),
            escape(&f.name),
            escape(f.status.as_str()),
            escape(&subjects.join(" "))
        );
        let _ = writeln!(s, "<p>{}</p>", escape(&f.message));
        if !f.evidence.is_empty() {
            let _ = writeln!(
                s,
                "<details><summary>evidence ({})</summary><pre>{}</pre></details>",
                f.evidence.len(),
                escape(&f.evidence.join("\n"))
            );
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(s, "<div class=\"fix\">{}</div>", fix_html(fix));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section>\n");
}

fn confirm(s: &mut String, d: &Diagnosis) {
    let tried: Vec<Pair<'_>> = d.pairs.iter().filter(|p| p.confirm().is_some()).collect();
    let _ = writeln!(
        s,
        "<section id=\"confirm\">\n<h2>Confirmed by transfers</h2>"
    );
    if tried.is_empty() {
        s.push_str("<p class=\"mute\">No transfers were run: the predictions above are the kernel's rules applied to the facts read. <code>sudo p2pdoctor report --confirm -o report.html</code> on the machine settles them with real, verified transfers.</p>\n</section>\n");
        return;
    }
    let top = tried
        .iter()
        .filter_map(|p| p.confirm())
        .flat_map(|c| [c.throughput, c.host_throughput])
        .flatten()
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    s.push_str("<table class=\"confirm\">\n<tr><th>provider</th><th>client</th><th>outcome</th><th>throughput (GB/s): P2P, host</th><th>what happened</th></tr>\n");
    for p in tried {
        let Some(c) = &p.confirm() else { continue };
        let bar = |v: Option<f64>, class: &str| match v {
            Some(v) => format!(
                "<div><span class=\"bar {class}\" style=\"width:{:.0}px\"></span> {v:.2} {class}</div>",
                (v / top * 240.0).max(1.0)
            ),
            None => format!("<div class=\"mute\">{class}: not measured</div>"),
        };
        let mut what = c.reason.clone();
        if let Some(e) = c.errno_name {
            what.push_str(&format!(" ({e})"));
        }
        if let Some(u) = &c.unsettled {
            what.push_str(&format!("; does not settle the pair: {u}"));
        }
        let _ = writeln!(
            s,
            "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}{}</td><td>{}{}</td></tr>",
            p.provider(),
            p.client(),
            escape(c.outcome.as_str()),
            bar(c.throughput, "p2p"),
            bar(c.host_throughput, "host"),
            escape(&what),
            if c.log.is_empty() {
                String::new()
            } else {
                format!("<pre>{}</pre>", escape(&c.log.join("\n")))
            }
        );
    }
    s.push_str("</table>\n</section>\n");
}

fn unread(s: &mut String, tree: &Tree, d: &Diagnosis) {
    let _ = writeln!(
        s,
        "<section id=\"unread\">\n<h2>Facts that could not be read</h2>"
    );
    let mut items: Vec<String> = d.limitations.clone();
    if d.header.kernel_assumed {
        items.push("the kernel release: the newest kernel's P2PDMA rules were assumed".into());
    }
    if d.header.p2pdma.config.is_none() {
        items.push("the kernel configuration (CONFIG_PCI_P2PDMA)".into());
    }
    let unknowns: BTreeSet<String> = d
        .pairs
        .iter()
        .flat_map(|p| p.verdict().unknown.iter().map(|u| u.to_string()))
        .collect();
    items.extend(
        unknowns
            .into_iter()
            .map(|u| format!("for a pair's decision: {u}")),
    );
    for n in &tree.nodes {
        if !n.facts.unknown_registers.is_empty() {
            items.push(format!(
                "{} registers: {}",
                n.bdf(),
                n.facts.unknown_registers.names()
            ));
        }
    }
    if items.is_empty() {
        s.push_str("<p>Everything the analysis needs was read.</p>\n");
    } else {
        s.push_str("<ul>\n");
        for i in &items {
            let _ = writeln!(s, "<li>{}</li>", escape(i));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</section>\n");
}
