//! `check --format svg`: the P2P picture drawn by the program itself (no
//! Graphviz): the tree from [`super::layout`], NUMA nodes, host bridges and
//! shared IOMMU groups as clusters, bridges that redirect peer traffic in
//! red, every pair as a coloured curve between its devices, and a legend.
//! Every box and curve carries a `<title>`: a browser shows it on hover.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::layout::{self, Frame, Layout, Link, Rect};
use super::{ACS_RED, EDGE_CLASSES, Ends, PairEdge, edge_colour, edge_meaning, escape};
use crate::diagnose::Diagnosis;
use crate::diagnose::matrix::DeviceKind;
use crate::topology::{Node, Role, Tree};
use crate::units::human_bytes;

const MARGIN: f64 = 16.0;
/// Characters that fit on a line of a box (11px monospace).
const BOX_CHARS: usize = 29;
const LEGEND_COL_W: f64 = 480.0;
const LEGEND_ROW_H: f64 = 18.0;

const FILL_ROOT_PORT: &str = "#dde8f5";
const FILL_SWITCH: &str = "#e8e8e8";
const FILL_PROVIDER: &str = "#d9f2d9";
const FILL_ENDPOINT: &str = "#ffffff";
const FILL_HOST_BRIDGE: &str = "#f4f6fb";
const COLOUR_NUMA: &str = "#b7950b";
const COLOUR_HOST_BRIDGE: &str = "#4a6fa5";
const COLOUR_IOMMU: &str = "#8e44ad";
const COLOUR_LINK: &str = "#777777";
const COLOUR_DEGRADED: &str = "#e67e22";

/// Cuts a line to what fits in a box.
fn fit(s: &str) -> String {
    if s.chars().count() <= BOX_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(BOX_CHARS - 1).collect();
        t.push('…');
        t
    }
}

fn short_role(n: &Node) -> String {
    if n.role.is_endpoint()
        && let Some(k) = DeviceKind::of_class(n.facts.class)
    {
        return match k {
            DeviceKind::Gpu => "GPU",
            DeviceKind::Nic => "NIC",
            DeviceKind::Nvme => "NVMe",
            DeviceKind::Accelerator => "accelerator",
        }
        .to_string();
    }
    let r = match n.role {
        Role::SwitchUpstreamPort => "switch up",
        Role::SwitchDownstreamPort => "switch down",
        r => r.label(),
    };
    if n.role_inferred {
        format!("{r}?")
    } else {
        r.to_string()
    }
}

fn fill(n: &Node) -> &'static str {
    match n.role {
        Role::RootPort => FILL_ROOT_PORT,
        Role::SwitchUpstreamPort | Role::SwitchDownstreamPort => FILL_SWITCH,
        _ if n.facts.p2pmem.is_some() => FILL_PROVIDER,
        _ => FILL_ENDPOINT,
    }
}

/// The third line of a box: ACS, link, IOMMU group, p2pmem.
fn facts_line(n: &Node) -> String {
    let mut parts = Vec::new();
    if let Some(acs) = n.caps.acs.as_ref().and_then(|a| a.ctrl)
        && acs.redirects()
    {
        parts.push(format!("ACS {}", acs.names().join(" ")));
    }
    if let Some(l) = n.link.as_ref().filter(|l| l.width.is_some()) {
        let mut s = format!(
            "{} x{}",
            l.speed_gts
                .and_then(crate::topology::LinkState::generation)
                .map(|g| format!("Gen{g}"))
                .unwrap_or_else(|| "Gen?".into()),
            l.width.unwrap_or(0)
        );
        if l.degraded() {
            s.push('↓');
        }
        parts.push(s);
    }
    if let Some(m) = &n.facts.p2pmem {
        parts.push(format!(
            "p2pmem {}",
            m.size.map(human_bytes).unwrap_or_default()
        ));
    }
    if let Some(g) = n.facts.iommu_group {
        parts.push(format!("grp {g}"));
    }
    parts.join(" · ")
}

/// Everything known about a function, for its hover title.
fn node_title(n: &Node, red: bool) -> String {
    let mut t = format!("{} {}\n{}", n.bdf(), n.role.label(), n.name());
    if let Some(acs) = n.caps.acs.as_ref().and_then(|a| a.ctrl) {
        let _ = write!(t, "\nACS Control: {}", acs.names().join(" "));
    }
    if red {
        t.push_str(
            "\nredirects peer requests upstream (ACS): P2P through it goes via the root complex",
        );
    }
    if let Some(l) = &n.link {
        let _ = write!(t, "\nlink {}", l.describe());
    }
    if let Some(g) = n.facts.iommu_group {
        let _ = write!(
            t,
            "\nIOMMU group {g}{}",
            n.facts
                .iommu_group_type
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default()
        );
    }
    if let Some(numa) = n.facts.numa_node {
        let _ = write!(t, "\nNUMA node {numa}");
    }
    if let Some(d) = &n.facts.driver {
        let _ = write!(t, "\ndriver {d}");
    }
    if let Some(m) = &n.facts.p2pmem {
        let _ = write!(
            t,
            "\np2pmem {}",
            m.size
                .map(human_bytes)
                .unwrap_or_else(|| "size unknown".into())
        );
    }
    if !n.facts.block_devices.is_empty() {
        let _ = write!(t, "\n{}", n.facts.block_devices.join(", "));
    }
    if !n.facts.os_names.is_empty() {
        let _ = write!(t, "\n{}", n.facts.os_names.join(", "));
    }
    if !n.facts.unknown_registers.is_empty() {
        let _ = write!(
            t,
            "
not read: {}",
            n.facts.unknown_registers.names()
        );
    }
    t
}

fn text(out: &mut String, x: f64, y: f64, attrs: &str, s: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\"{attrs}>{}</text>",
        escape(s)
    );
}

fn rect(out: &mut String, r: &Rect, attrs: &str) {
    let _ = writeln!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" {attrs}/>",
        r.x, r.y, r.w, r.h
    );
}

/// The legend: (kind, class, label) per entry.
fn legend_entries(d: Option<&Diagnosis>) -> Vec<(&'static str, String, String)> {
    let mut v: Vec<(&'static str, String, String)> = vec![
        ("box", FILL_ROOT_PORT.into(), "root port".into()),
        ("box", FILL_SWITCH.into(), "PCIe switch port".into()),
        ("box", FILL_ENDPOINT.into(), "endpoint".into()),
        (
            "box",
            FILL_PROVIDER.into(),
            "P2P memory provider (p2pmem)".into(),
        ),
        (
            "acs",
            ACS_RED.into(),
            "bridge with ACS redirect (peer traffic sent to the root complex)".into(),
        ),
        ("frame", COLOUR_NUMA.into(), "NUMA node".into()),
        (
            "frame",
            COLOUR_HOST_BRIDGE.into(),
            "host bridge (root complex)".into(),
        ),
        (
            "group",
            COLOUR_IOMMU.into(),
            "IOMMU group shared by several functions".into(),
        ),
        ("link", COLOUR_LINK.into(), "PCIe link".into()),
        (
            "degraded",
            COLOUR_DEGRADED.into(),
            "link trained below its capability (↓)".into(),
        ),
    ];
    if d.is_some() {
        for m in EDGE_CLASSES {
            v.push((
                "edge",
                m.as_str().into(),
                format!("pair {}", edge_meaning(m)),
            ));
        }
        v.push((
            "uncertain",
            "uncertain".into(),
            "pair decided on facts that could not be read (dotted)".into(),
        ));
    }
    v
}

/// The picture as an SVG document. `xml_declaration`: false when it is
/// embedded in HTML.
pub fn render(
    tree: &Tree,
    d: Option<&Diagnosis>,
    xml_declaration: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let lay = layout::layout(tree);
    out.write_all(to_string(tree, d, &lay, xml_declaration).as_bytes())
}

fn to_string(tree: &Tree, d: Option<&Diagnosis>, lay: &Layout, xml_declaration: bool) -> String {
    let red = super::acs_redirecting(tree, d);
    let (edges, total_edges) = d.map(|d| super::pair_edges(tree, d)).unwrap_or_default();
    let legend = legend_entries(d);

    let page_w = lay.width.max(2.0 * LEGEND_COL_W);
    let cols = ((page_w / LEGEND_COL_W).floor() as usize).max(1);
    let legend_rows = legend.len().div_ceil(cols);
    let title_h = 40.0;
    let legend_h = legend_rows as f64 * LEGEND_ROW_H + 14.0;
    let top = MARGIN + title_h + legend_h;
    let extra_below: f64 = 90.0; // room for pair curves bowing below the last row
    // Room on the right for bundles of pairs between host bridges.
    let width = page_w + 2.0 * MARGIN + 240.0;
    let height = top + lay.height + extra_below.min(lay.height) + MARGIN;

    let mut s = String::with_capacity(4096 + tree.nodes.len() * 900);
    if xml_declaration {
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"p2p-picture\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"11\">"
    );
    let host = tree.host.hostname.as_deref().unwrap_or("unknown host");
    let heading = format!(
        "p2pdoctor · {host} · kernel {}",
        tree.host.kernel_release.as_deref().unwrap_or("unknown")
    );
    let verdict = d.map(|d| {
        format!(
            "{}: {}",
            d.summary.verdict.predicted.as_str(),
            d.summary.headline
        )
    });
    let _ = writeln!(
        s,
        "<title>{}</title>",
        escape(&match &verdict {
            Some(v) => format!("{heading} · {v}"),
            None => heading.clone(),
        })
    );
    // What fits on a line of the page (bold 15px and 11px monospace).
    let cut = |t: &str, px: f64| -> String {
        let n = ((width - 2.0 * MARGIN) / px).max(8.0) as usize;
        if t.chars().count() <= n {
            t.to_string()
        } else {
            let mut c: String = t.chars().take(n - 1).collect();
            c.push('…');
            c
        }
    };
    rect(
        &mut s,
        &Rect {
            x: 0.0,
            y: 0.0,
            w: width,
            h: height,
        },
        "fill=\"#ffffff\"",
    );
    text(
        &mut s,
        MARGIN,
        MARGIN + 14.0,
        " font-size=\"15\" font-weight=\"bold\"",
        &cut(&heading, 9.2),
    );
    let mut second = verdict.unwrap_or_default();
    if total_edges > edges.len() {
        let _ = write!(
            second,
            " ({} of {total_edges} pair edges drawn, the worst first; the matrix and the JSON hold all)",
            edges.len()
        );
    }
    text(&mut s, MARGIN, MARGIN + 30.0, "", &cut(&second, 6.7));

    // Legend.
    s.push_str("<g class=\"legend\">\n");
    for (i, (kind, class, label)) in legend.iter().enumerate() {
        let x = MARGIN + (i % cols) as f64 * LEGEND_COL_W;
        let y = MARGIN + title_h + (i / cols) as f64 * LEGEND_ROW_H;
        let _ = writeln!(
            s,
            "<g class=\"legend-{kind}\" data-class=\"{}\">",
            escape(class)
        );
        match *kind {
            "box" => rect(
                &mut s,
                &Rect {
                    x,
                    y,
                    w: 26.0,
                    h: 12.0,
                },
                &format!("fill=\"{class}\" stroke=\"#555\" rx=\"2\""),
            ),
            "acs" => rect(
                &mut s,
                &Rect {
                    x,
                    y,
                    w: 26.0,
                    h: 12.0,
                },
                &format!("fill=\"#fff\" stroke=\"{class}\" stroke-width=\"2.5\" rx=\"2\""),
            ),
            "frame" => rect(
                &mut s,
                &Rect {
                    x,
                    y,
                    w: 26.0,
                    h: 12.0,
                },
                &format!("fill=\"none\" stroke=\"{class}\" stroke-width=\"1.5\" rx=\"5\""),
            ),
            "group" => rect(
                &mut s,
                &Rect {
                    x,
                    y,
                    w: 26.0,
                    h: 12.0,
                },
                &format!("fill=\"none\" stroke=\"{class}\" stroke-dasharray=\"4 2\""),
            ),
            "link" | "degraded" => {
                let dash = if *kind == "degraded" {
                    " stroke-dasharray=\"5 3\""
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{class}\" stroke-width=\"1.5\"{dash}/>",
                    y + 6.0,
                    x + 26.0,
                    y + 6.0
                );
            }
            "edge" => {
                let colour = EDGE_CLASSES
                    .iter()
                    .find(|m| m.as_str() == class)
                    .map(|m| edge_colour(*m))
                    .unwrap_or("#000");
                let _ = writeln!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>",
                    y + 6.0,
                    x + 26.0,
                    y + 6.0
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#555\" stroke-width=\"2.5\" stroke-dasharray=\"2 3\"/>",
                    y + 6.0,
                    x + 26.0,
                    y + 6.0
                );
            }
        }
        text(&mut s, x + 32.0, y + 10.0, "", label);
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n");

    let _ = writeln!(s, "<g transform=\"translate({MARGIN:.1},{top:.1})\">");
    // Clusters.
    for (frame, r) in &lay.frames {
        let (colour, label, fill) = match frame {
            Frame::Numa(Some(n)) => (COLOUR_NUMA, format!("NUMA node {n}"), "#fdfcf3"),
            Frame::Numa(None) => (COLOUR_NUMA, "NUMA node unknown".to_string(), "#fdfcf3"),
            Frame::HostBridge(h) => {
                let hb = &tree.host_bridges[*h];
                // The longest wording that fits the frame (a narrow one
                // must not run into its neighbour).
                let fits = |t: &String| t.chars().count() as f64 * 6.8 + 16.0 <= r.w;
                let label = [
                    format!(
                        "host bridge {} (domain {:04x}, bus {:02x})",
                        hb.id, hb.domain, hb.bus
                    ),
                    format!("host bridge {}", hb.id),
                ]
                .into_iter()
                .find(fits)
                .unwrap_or_else(|| hb.id.clone());
                (COLOUR_HOST_BRIDGE, label, "#f7f9fd")
            }
        };
        let class = match frame {
            Frame::Numa(_) => "numa",
            Frame::HostBridge(_) => "host-bridge",
        };
        let _ = writeln!(s, "<g class=\"cluster {class}\">");
        rect(
            &mut s,
            r,
            &format!("fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"1.5\" rx=\"8\""),
        );
        text(
            &mut s,
            r.x + 8.0,
            r.y + 14.0,
            &format!(" fill=\"{colour}\" font-weight=\"bold\""),
            &label,
        );
        s.push_str("</g>\n");
    }
    // IOMMU groups with several functions.
    let mut groups: BTreeMap<u32, Vec<Rect>> = BTreeMap::new();
    for (id, n) in tree.nodes_with_ids() {
        if let (Some(g), Some(r)) = (n.facts.iommu_group, lay.nodes[id]) {
            groups.entry(g).or_default().push(r);
        }
    }
    let all_boxes: Vec<Rect> = lay.nodes.iter().flatten().copied().collect();
    for (g, rects) in groups.iter().filter(|(_, r)| r.len() > 1) {
        let u = rects[1..].iter().fold(rects[0], |a, b| a.union(*b));
        // One frame round the group where it holds only its own members
        // (functions side by side); else a frame round each member, so
        // that no other function looks like part of the group.
        let others_inside = all_boxes.iter().any(|b| {
            !rects.contains(b)
                && b.x < u.x + u.w
                && b.x + b.w > u.x
                && b.y < u.y + u.h
                && b.y + b.h > u.y
        });
        let frames: Vec<Rect> = if others_inside {
            rects.clone()
        } else {
            vec![u]
        };
        let _ = writeln!(s, "<g class=\"cluster iommu-group\" data-group=\"{g}\">");
        let _ = writeln!(
            s,
            "<title>IOMMU group {g}: {} functions</title>",
            rects.len()
        );
        for f in frames {
            let r = Rect {
                x: f.x - 5.0,
                y: f.y - 5.0,
                w: f.w + 10.0,
                h: f.h + 10.0,
            };
            rect(
                &mut s,
                &r,
                &format!(
                    "fill=\"none\" stroke=\"{COLOUR_IOMMU}\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" rx=\"6\""
                ),
            );
            text(
                &mut s,
                r.x + r.w - 4.0,
                r.y - 2.0,
                &format!(" fill=\"{COLOUR_IOMMU}\" text-anchor=\"end\" font-size=\"10\""),
                &format!("IOMMU group {g}"),
            );
        }
        s.push_str("</g>\n");
    }
    // Tree links.
    for (link, pts) in &lay.links {
        let child = match link {
            Link::Root(n) | Link::Child(n) => tree.node(*n),
        };
        let l = child.link.as_ref().filter(|l| l.width.is_some());
        let degraded = l.is_some_and(|l| l.degraded());
        let colour = if degraded {
            COLOUR_DEGRADED
        } else {
            COLOUR_LINK
        };
        let dash = if degraded {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let points: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            "<polyline class=\"link\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.4\"{dash}><title>{}</title></polyline>",
            points.join(" "),
            escape(&format!(
                "link to {}: {}",
                child.bdf(),
                l.map(|l| l.describe())
                    .unwrap_or_else(|| "not known".into())
            ))
        );
    }
    // Pair curves, under the boxes so the text stays readable.
    for (i, e) in edges.iter().enumerate() {
        pair_curve(&mut s, tree, lay, e, i);
    }
    // Host bridges.
    for (h, r) in lay.host_bridges.iter().enumerate() {
        let Some(r) = r else { continue };
        let hb = &tree.host_bridges[h];
        let first = hb.first_function.map(|f| tree.node(f));
        let _ = writeln!(
            s,
            "<g class=\"host-bridge-box\" data-id=\"{}\">",
            escape(&hb.id)
        );
        let _ = writeln!(
            s,
            "<title>{}</title>",
            escape(&format!(
                "host bridge {} (the root complex){}{}",
                hb.id,
                hb.numa_node
                    .map(|n| format!("\nNUMA node {n}"))
                    .unwrap_or_default(),
                first
                    .map(|f| format!("\nfirst device {} {}", f.bdf(), f.name()))
                    .unwrap_or_default()
            ))
        );
        rect(
            &mut s,
            r,
            &format!(
                "fill=\"{FILL_HOST_BRIDGE}\" stroke=\"{COLOUR_HOST_BRIDGE}\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\" rx=\"10\""
            ),
        );
        text(
            &mut s,
            r.x + 6.0,
            r.y + 15.0,
            " font-weight=\"bold\"",
            &fit(&format!("{} root complex", hb.id)),
        );
        if let Some(f) = first {
            text(&mut s, r.x + 6.0, r.y + 29.0, "", &fit(&f.name()));
        }
        if let Some(n) = hb.numa_node {
            text(
                &mut s,
                r.x + 6.0,
                r.y + 43.0,
                " fill=\"#555\"",
                &format!("NUMA {n}"),
            );
        }
        s.push_str("</g>\n");
    }
    // Functions.
    for (id, n) in tree.nodes_with_ids() {
        let Some(r) = lay.nodes[id] else { continue };
        let (stroke, sw) = if red[id] {
            (ACS_RED, 2.5)
        } else {
            ("#555555", 1.0)
        };
        let classes = if red[id] { "node acs-redirect" } else { "node" };
        let _ = writeln!(
            s,
            "<g class=\"{classes}\" data-bdf=\"{}\">",
            escape(&n.bdf().to_string())
        );
        let _ = writeln!(s, "<title>{}</title>", escape(&node_title(n, red[id])));
        rect(
            &mut s,
            &r,
            &format!(
                "fill=\"{}\" stroke=\"{stroke}\" stroke-width=\"{sw}\" rx=\"4\"",
                fill(n)
            ),
        );
        text(
            &mut s,
            r.x + 6.0,
            r.y + 14.0,
            " font-weight=\"bold\"",
            &fit(&format!("{} {}", n.bdf(), short_role(n))),
        );
        text(&mut s, r.x + 6.0, r.y + 28.0, "", &fit(&n.name()));
        let facts = facts_line(n);
        let colour = if red[id] { ACS_RED } else { "#444" };
        text(
            &mut s,
            r.x + 6.0,
            r.y + 42.0,
            &format!(" fill=\"{colour}\""),
            &fit(&facts),
        );
        s.push_str("</g>\n");
    }
    s.push_str("</g>\n</svg>\n");
    s
}

/// A few words for a bundle's label.
fn short_class(m: crate::diagnose::MapType) -> &'static str {
    match m {
        crate::diagnose::MapType::BusAddr => "peer-to-peer",
        crate::diagnose::MapType::ThruHostBridge => "via root complex",
        crate::diagnose::MapType::NotSupported => "refused",
    }
}

fn bundle_label(e: &PairEdge) -> String {
    format!(
        "{} pair{} {}",
        e.pairs,
        if e.pairs == 1 { "" } else { "s" },
        short_class(e.map_type)
    )
}

fn pair_curve(s: &mut String, tree: &Tree, lay: &Layout, e: &PairEdge, i: usize) {
    let colour = edge_colour(e.map_type);
    let dash = if e.certain {
        ""
    } else {
        " stroke-dasharray=\"2 3\""
    };
    let (path, names, label) = match e.ends {
        Ends::Devices(a, b) => {
            let (Some(ra), Some(rb)) = (lay.nodes[a], lay.nodes[b]) else {
                return;
            };
            // Spread the ends a little so curves sharing a device stay apart.
            let spread = ((i % 7) as f64 - 3.0) * 8.0;
            let (ax, ay) = ra.bottom_centre();
            let (bx, by) = rb.bottom_centre();
            let (ax, bx) = (ax + spread, bx + spread);
            let bow = 18.0 + ((ax - bx).abs() + (ay - by).abs()).sqrt() * 1.6;
            let low = ay.max(by) + bow;
            (
                format!("M{ax:.1},{ay:.1} C{ax:.1},{low:.1} {bx:.1},{low:.1} {bx:.1},{by:.1}"),
                (
                    tree.node(a).bdf().to_string(),
                    tree.node(b).bdf().to_string(),
                ),
                None,
            )
        }
        Ends::HostBridges(a, b) => {
            let (Some(ra), Some(rb)) = (lay.host_bridges[a], lay.host_bridges[b]) else {
                return;
            };
            let k = (i % 5) as f64 * 18.0;
            let (ay, by) = (ra.y + ra.h / 2.0, rb.y + rb.h / 2.0);
            let path = if (ay - by).abs() < 1.0 {
                // Side by side: over the top.
                let (ax, bx) = (ra.x + ra.w / 2.0, rb.x + rb.w / 2.0);
                let high = ra.y - 30.0 - k;
                format!(
                    "M{ax:.1},{:.1} C{ax:.1},{high:.1} {bx:.1},{high:.1} {bx:.1},{:.1}",
                    ra.y, rb.y
                )
            } else {
                // Stacked: out of the right sides, round beside.
                let (ax, bx) = (ra.x + ra.w, rb.x + rb.w);
                // Beside everything: nothing else sits right of a host
                // bridge's box at its height.
                let side = lay.width + 24.0 + k;
                format!("M{ax:.1},{ay:.1} C{side:.1},{ay:.1} {side:.1},{by:.1} {bx:.1},{by:.1}")
            };
            let mid = if (ay - by).abs() < 1.0 {
                ((ra.x + rb.x + ra.w) / 2.0, ra.y - 30.0 - k)
            } else {
                // The curve's rightmost point, and the label just right of
                // it, a line lower per bundle so that labels do not meet.
                let (ax, bx) = (ra.x + ra.w, rb.x + rb.w);
                let apex = (ax + bx) / 8.0 + 0.75 * (lay.width + 24.0 + k);
                (apex + 4.0, (ay + by) / 2.0 + (i % 5) as f64 * 14.0)
            };
            (
                path,
                (
                    tree.host_bridges[a].id.clone(),
                    tree.host_bridges[b].id.clone(),
                ),
                Some((mid, bundle_label(e))),
            )
        }
        Ends::Fan(n) => {
            let node = tree.node(n);
            let (Some(r), Some(h)) = (lay.nodes[n], lay.host_bridges[node.host_bridge]) else {
                return;
            };
            let k = ((i % 5) as f64 - 2.0) * 10.0;
            let (nx, ny) = (r.x + r.w / 2.0 + k, r.y);
            let (hx, hy) = (h.x + h.w / 2.0 + k, h.y + h.h);
            let path = format!(
                "M{nx:.1},{ny:.1} C{nx:.1},{:.1} {hx:.1},{:.1} {hx:.1},{hy:.1}",
                ny - 40.0,
                hy + 40.0
            );
            let hb = &tree.host_bridges[node.host_bridge];
            (
                path,
                (node.bdf().to_string(), hb.id.clone()),
                Some(((nx, ny - 6.0), bundle_label(e))),
            )
        }
    };
    let title = format!("{} ↔ {}\n{}", names.0, names.1, e.details.join("\n"));
    let width = if label.is_some() { 4 } else { 2 };
    let _ = writeln!(
        s,
        "<path class=\"pair {}\" data-pair=\"{} {}\" d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" stroke-opacity=\"0.75\"{dash}><title>{}</title></path>",
        e.map_type.as_str(),
        escape(&names.0),
        escape(&names.1),
        escape(&title)
    );
    let anchor = match e.ends {
        Ends::HostBridges(a, b)
            if lay.host_bridges[a].map(|r| r.y) != lay.host_bridges[b].map(|r| r.y) =>
        {
            "start"
        }
        _ => "middle",
    };
    if let Some(((x, y), l)) = label {
        let _ = writeln!(
            s,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" fill=\"{colour}\" font-weight=\"bold\" text-anchor=\"{anchor}\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">{}<title>{}</title></text>",
            escape(&l),
            escape(&title)
        );
    }
}
