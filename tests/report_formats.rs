//! `check --format junit|prometheus` and `--summary`: the formats pipelines
//! and monitoring read, held to the real consumers where they are
//! installed (`promtool check metrics`, `xmllint`, a real
//! `prometheus-node-exporter` scraped over 127.0.0.1). Without a tool the
//! test says so and skips, unless P2PDOCTOR_REQUIRE_ORACLES is set (as in
//! .ci/run, which installs them).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn check(root: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = run(root, &[&["check", "--all-pairs"], args].concat());
    (
        out.status.code(),
        String::from_utf8(out.stdout).expect("UTF-8 output"),
    )
}

/// Every fixture's exposition passes promtool's own lint.
#[test]
fn prometheus_output_passes_promtool_on_every_fixture() {
    let promtool = have("promtool");
    for spec in spec_names() {
        let built = build(&spec);
        let (code, text) = check(&built.root(), &["--format", "prometheus"]);
        assert!(matches!(code, Some(0..=2)), "{spec}: exit {code:?}");
        for family in [
            "p2pdoctor_build_info",
            "p2pdoctor_verdict",
            "p2pdoctor_verdict_verified",
            "p2pdoctor_suppressed_findings",
            "p2pdoctor_findings",
            "p2pdoctor_pairs",
            "p2pdoctor_acs_redirect_bridges",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} gauge")),
                "{spec}: {family}"
            );
        }
        // Exactly one verdict state holds, and it is the exit status's.
        let on: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("p2pdoctor_verdict{") && l.ends_with(" 1"))
            .collect();
        let want = match code {
            Some(0) => "clear",
            _ => "",
        };
        assert_eq!(on.len(), 1, "{spec}: {on:?}");
        if !want.is_empty() {
            assert!(on[0].contains(want), "{spec}: {on:?}");
        }
        // Without --confirm the second tier is untested.
        assert!(
            text.contains("p2pdoctor_verdict_verified{outcome=\"untested\"} 1"),
            "{spec}"
        );
        if promtool {
            let mut child = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{spec}: promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A case fails exactly where the finding alone fails --fail-on, so the
/// report and the exit status never disagree; every catalog rule is there.
#[test]
fn junit_cases_fail_exactly_where_check_would_exit_non_zero() {
    let xmllint = have("xmllint");
    let rules = {
        let out = p2pdoctor()
            .args(["rules", "--format", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .or_else(|| v["rules"].as_array())
            .map(|a| a.len())
            .unwrap()
    };
    for spec in spec_names() {
        let built = build(&spec);
        for fail_on in ["warning", "error"] {
            let (code, xml) = check(&built.root(), &["--format", "junit", "--fail-on", fail_on]);
            let failures = xml.matches("<failure ").count();
            assert_eq!(
                failures > 0,
                code != Some(0),
                "{spec} --fail-on {fail_on}: exit {code:?} with {failures} failing cases"
            );
            let cases = xml.matches("<testcase ").count();
            assert!(cases >= rules, "{spec}: {cases} cases for {rules} rules");
            if xmllint {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("report.xml");
                std::fs::write(&path, &xml).unwrap();
                let ok = Command::new("xmllint")
                    .arg("--noout")
                    .arg(&path)
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "{spec}: not well-formed XML");
            }
        }
    }
    // One case per subject: the ACS finding names four bridges and four
    // endpoints in acs_switch.
    let built = build("acs_switch");
    let (_, xml) = check(&built.root(), &["--format", "junit"]);
    assert_eq!(
        xml.matches("name=\"P2P301 acs-redirect 0000:").count(),
        8,
        "{xml}"
    );
}

#[test]
fn summary_is_one_line_with_the_same_exit_status() {
    let built = build("acs_switch");
    let (code, text) = check(&built.root(), &["--summary"]);
    assert_eq!(code, Some(1));
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("p2pdoctor: warnings: 3 warnings"),
        "{text}"
    );
    let built = build("rule_clean");
    let out = run(&built.root(), &["check", "--summary"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("p2pdoctor: clear:"));
}

/// GET /metrics over plain HTTP/1.0.
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The textfile collector of a real node_exporter serves what check wrote.
#[test]
fn node_exporter_textfile_collector_serves_the_metrics() {
    if !have("prometheus-node-exporter") {
        return;
    }
    let built = build("acs_switch");
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("p2pdoctor.prom");
    let out = run(
        &built.root(),
        &[
            "check",
            "--format",
            "prometheus",
            "-o",
            prom.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut exporter = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!(
            "--collector.textfile.directory={}",
            dir.path().display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let body = loop {
        if let Some(b) = scrape(port)
            && b.contains("p2pdoctor_")
        {
            break Some(b);
        }
        if start.elapsed() > Duration::from_secs(15) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = exporter.kill();
    let out = exporter.wait_with_output().unwrap();
    let body = body.unwrap_or_else(|| {
        panic!(
            "node_exporter served no p2pdoctor metric: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        body.contains("p2pdoctor_verdict{verdict=\"warnings\"} 1"),
        "{body}"
    );
    assert!(body.contains("p2pdoctor_acs_redirect_bridges 4"), "{body}");
    // The collector read the file without complaint.
    assert!(
        body.contains("node_textfile_scrape_error 0"),
        "{}",
        body.lines()
            .filter(|l| l.contains("textfile"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
