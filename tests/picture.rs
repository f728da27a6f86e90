//! The P2P picture: `check --format svg` (laid out by p2pdoctor, no
//! Graphviz) and `check --format dot` (Graphviz with the pairs).
//!
//! The SVG must be well-formed XML (xmllint), readable in shape for a
//! 2-socket server with 8 GPUs (not a 4000×357 strip), draw bridges that
//! redirect peer traffic in red, and explain every edge class it uses in
//! its legend. The DOT must pass `dot -Tsvg`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{build, have_tool, run, spec_names, topo_json, variant};

/// `check ARGS`, whatever the verdict (exit 0, 1 or 2), as text.
fn check_out(root: &Path, args: &[&str]) -> String {
    let out = run(root, &[&["check"], args].concat());
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "check {args:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn svg_of(root: &Path) -> String {
    check_out(root, &["--all-pairs", "--format", "svg"])
}

/// The `width` and `height` of the root `<svg>` element.
fn size(svg: &str) -> (f64, f64) {
    let open = &svg[svg.find("<svg").unwrap()..];
    let open = &open[..open.find('>').unwrap()];
    let attr = |name: &str| -> f64 {
        let at = open.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        open[at..at + open[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    (attr("width"), attr("height"))
}

/// Every value of `attr="..."` on elements whose opening tag contains
/// `marker`.
fn attrs_where(svg: &str, marker: &str, attr: &str) -> Vec<String> {
    svg.split('<')
        .filter(|tag| tag.contains(marker))
        .filter_map(|tag| {
            let at = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
            Some(tag[at..at + tag[at..].find('"')?].to_string())
        })
        .collect()
}

/// (x, y, width, height) of every function's box.
fn node_boxes(svg: &str) -> Vec<(f64, f64, f64, f64)> {
    svg.split("<g class=\"node")
        .skip(1)
        .map(|g| {
            let rect = &g[g.find("<rect").unwrap()..];
            let num = |attr: &str| -> f64 {
                let at = rect.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
                rect[at..at + rect[at..].find('"').unwrap()]
                    .parse()
                    .unwrap()
            };
            (num("x"), num("y"), num("width"), num("height"))
        })
        .collect()
}

fn xmllint_ok(name: &str, text: &str) {
    let mut child = Command::new("xmllint")
        .args(["--noout", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{name}: not well-formed XML:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn svg_is_well_formed_for_every_spec() {
    if !have_tool("xmllint") {
        return;
    }
    for name in spec_names() {
        let built = build(&name);
        let svg = svg_of(&built.root());
        assert!(svg.starts_with("<?xml"), "{name}");
        xmllint_ok(&name, &svg);
    }
}

#[test]
fn svg_escapes_what_the_machine_says() {
    let (_dir, root) = variant(|v| {
        v["host"]["hostname"] = toml::Value::String("<evil & \"host\"\u{1b}[31m>".into());
    });
    let svg = svg_of(&root);
    assert!(!svg.contains("<evil"), "unescaped host name");
    assert!(svg.contains("&lt;evil &amp; &quot;host&quot;[31m&gt;"));
    assert!(!svg.contains('\u{1b}'), "control character in the SVG");
    if have_tool("xmllint") {
        xmllint_ok("hostile host name", &svg);
    }
}

#[test]
fn large_servers_stay_readable() {
    for name in ["hgx_8gpu_two_level_switches", "two_socket_server"] {
        let built = build(name);
        let svg = svg_of(&built.root());
        let (w, h) = size(&svg);
        assert!(
            w <= 3.0 * h && h <= 3.0 * w,
            "{name}: {w}×{h} is a strip, not a picture"
        );
        // No two boxes overlap.
        let boxes = node_boxes(&svg);
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart =
                    a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
                assert!(apart, "{name}: boxes overlap: {a:?} {b:?}");
            }
        }
        // Every function is drawn.
        let topo = topo_json(&built.root());
        let drawn: BTreeSet<String> = attrs_where(&svg, "class=\"node", "data-bdf")
            .into_iter()
            .collect();
        for d in topo["devices"].as_array().unwrap() {
            let bdf = d["bdf"].as_str().unwrap();
            assert!(drawn.contains(bdf), "{name}: {bdf} not drawn");
        }
    }
}

#[test]
fn acs_redirect_bridges_are_red() {
    for name in [
        "hgx_8gpu_two_level_switches",
        "acs_switch",
        "two_socket_server",
    ] {
        let built = build(name);
        let svg = svg_of(&built.root());
        let topo = topo_json(&built.root());
        let redirecting: BTreeSet<String> = topo["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["acs"]["redirects"] == true)
            .map(|d| d["bdf"].as_str().unwrap().to_string())
            .collect();
        assert!(
            !redirecting.is_empty(),
            "{name}: no redirecting bridge to test"
        );
        let red: BTreeSet<String> = attrs_where(&svg, "class=\"node acs-redirect\"", "data-bdf")
            .into_iter()
            .collect();
        assert!(
            redirecting.is_subset(&red),
            "{name}: redirecting {redirecting:?}, drawn red {red:?}"
        );
        // Each red node's box has the red stroke.
        for bdf in &red {
            let at = svg.find(&format!("data-bdf=\"{bdf}\"")).unwrap();
            let rect = &svg[at..][svg[at..].find("<rect").unwrap()..];
            let rect = &rect[..rect.find("/>").unwrap()];
            assert!(rect.contains("stroke=\"#c0392b\""), "{name}: {bdf}: {rect}");
        }
    }
}

#[test]
fn every_pair_edge_class_is_in_the_legend() {
    let mut seen = BTreeSet::new();
    for name in [
        "hgx_8gpu_two_level_switches",
        "two_socket_server",
        "acs_switch",
        "rule_not_whitelisted",
        "multifunction",
    ] {
        let built = build(name);
        let svg = svg_of(&built.root());
        let legend: BTreeSet<String> = attrs_where(&svg, "class=\"legend-edge\"", "data-class")
            .into_iter()
            .collect();
        for tag in svg
            .split('<')
            .filter(|t| t.starts_with("path class=\"pair "))
        {
            let class = tag["path class=\"pair ".len()..].split('"').next().unwrap();
            assert!(
                legend.contains(class),
                "{name}: {class} not in the legend {legend:?}"
            );
            seen.insert(class.to_string());
        }
    }
    // The fixtures draw more than one class, so the legend check means
    // something.
    assert!(seen.len() >= 2, "only {seen:?} drawn");
}

#[test]
fn pairs_across_host_bridges_are_bundled() {
    let built = build("hgx_8gpu_two_level_switches");
    let svg = svg_of(&built.root());
    // 6 GPUs and NICs per socket: 36 pairs cross the sockets, drawn as one
    // bundle between the two host bridges.
    let bundles: Vec<String> = attrs_where(&svg, "path class=\"pair ", "data-pair")
        .into_iter()
        .filter(|p| p.starts_with("pci"))
        .collect();
    assert_eq!(
        bundles,
        vec!["pci0000:15 pci0000:97".to_string()],
        "{bundles:?}"
    );
    assert!(
        svg.contains(">36 pairs via root complex<"),
        "the bundle says how many pairs"
    );
}

#[test]
fn busy_devices_fan_into_their_root_complex() {
    // Below pci0000:40 ten GPUs, NICs and an NVMe all pair through the
    // host bridge (ACS redirect everywhere): each device's 9 pairs are one
    // labelled line to the root complex, not 45 crossing curves.
    let built = build("two_socket_server");
    let svg = svg_of(&built.root());
    let fans: Vec<String> = attrs_where(&svg, "path class=\"pair ", "data-pair")
        .into_iter()
        .filter(|p| p.ends_with(" pci0000:40"))
        .collect();
    assert_eq!(fans.len(), 10, "{fans:?}");
    assert!(svg.contains(">9 pairs via root complex<"));
    // No single curve is left between two devices below pci0000:40.
    let below_40 = |bdf: &str| bdf.starts_with("0000:4");
    for p in attrs_where(&svg, "path class=\"pair ", "data-pair") {
        let (a, b) = p.split_once(' ').unwrap();
        assert!(!(below_40(a) && below_40(b)), "{p} drawn alone");
    }
}

#[test]
fn check_dot_draws_pairs_and_passes_graphviz() {
    for name in [
        "hgx_8gpu_two_level_switches",
        "two_socket_server",
        "acs_switch",
        "hostile",
    ] {
        let built = build(name);
        let dot = check_out(&built.root(), &["--all-pairs", "--format", "dot"]);
        // --dot is the same as --format dot.
        assert_eq!(
            dot,
            check_out(&built.root(), &["--all-pairs", "--dot"]),
            "{name}"
        );
        assert!(dot.contains("cluster_legend"), "{name}");
        if name != "hostile" {
            assert!(dot.contains("class=\"pair "), "{name}: no pair edges");
        }
        if !have_tool("dot") {
            continue;
        }
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), dot.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("<svg"),
            "{name}: dot rejected:\n{}\n{dot}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn svg_and_report_need_no_graphviz() {
    // An empty PATH: no dot to call even if the program wanted to.
    let built = build("acs_switch");
    for format in ["svg", "html"] {
        let out = common::p2pdoctor()
            .env("PATH", "")
            .arg("--root")
            .arg(built.root())
            .args(["check", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 2), "{format}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("<svg"),
            "{format}"
        );
    }
}

#[test]
fn a_large_server_is_a_picture_not_a_hairball() {
    // The generated large server: two providers paired with every NIC.
    let spec = p2pdoctor_fixture::large_server(200);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    p2pdoctor_fixture::build(&spec, &root).unwrap();
    let svg = check_out(&root, &["--format", "svg"]);
    let (w, h) = size(&svg);
    assert!(w <= 3.0 * h && h <= 3.0 * w, "{w}×{h}");
    let curves = svg.matches("<path class=\"pair ").count();
    assert!(
        (1..=20).contains(&curves),
        "{curves} pair curves: busy providers should fan into their root complex"
    );
}
