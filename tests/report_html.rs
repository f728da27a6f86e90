//! `p2pdoctor report -o report.html`, opened in headless Chromium.
//!
//! For every lab capture (tests/fixtures/lab/*.tar.gz) and the 8-GPU
//! fixture: the page loads with no console message (the page logs nothing
//! of its own, so any is an error: a script error, a blocked external
//! load), its inline script ran (it marks the document only at its end),
//! and the verdict and every finding of `check --format json` are in the
//! DOM. A screenshot of each is kept under target/report-screenshots/ for
//! a person to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{build, fixtures_dir, have_tool, p2pdoctor, variant};

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .or_else(|| {
            // Says SKIPPED, or fails under P2PDOCTOR_REQUIRE_ORACLES.
            have_tool("chromium");
            None
        })
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on a file: (stdout, stderr).
fn browse(browser: &str, html: &Path, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{browser} on {}: {:?}\n{}",
        html.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes the report of `root`, returns its path and `check --format
/// json`'s document for the same input.
fn report(root: &Path, dir: &Path, name: &str) -> (PathBuf, serde_json::Value) {
    let html = dir.join(format!("{name}.html"));
    let out = p2pdoctor()
        .arg("--root")
        .arg(root)
        .args(["report", "-o"])
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = common::json_on(root, &["check", "--format", "json"]);
    (html, json)
}

fn check_in_browser(browser: &str, name: &str, html: &Path, json: &serde_json::Value) {
    let text = std::fs::read_to_string(html).unwrap();
    // Self-contained: nothing that loads from anywhere (text from the
    // machine may say `src=`, escaped inside an element, never as an
    // attribute of one).
    for needle in [" src=\"", " href=\"", "<link", "@import", "url("] {
        assert!(!text.contains(needle), "{name}: {needle} in the report");
    }
    assert!(text.contains("Content-Security-Policy"), "{name}: no CSP");

    let (dom, log) = browse(browser, html, &["--dump-dom"]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "{name}: console messages:\n{}",
        console.join("\n")
    );
    assert!(
        dom.contains("data-p2pdoctor-js=\"ok\""),
        "{name}: the inline script did not run to its end"
    );
    let verdict = json["summary"]["verdict"]["predicted"].as_str().unwrap();
    assert!(
        dom.contains(&format!("data-verdict=\"{verdict}\"")),
        "{name}: verdict {verdict} not in the DOM"
    );
    for f in json["findings"].as_array().unwrap() {
        let rule = f["rule"].as_str().unwrap();
        assert!(
            dom.contains(&format!("data-rule=\"{rule}\"")),
            "{name}: finding {rule} not in the DOM"
        );
    }
    assert!(dom.contains("<svg"), "{name}: no picture");
    for section in [
        "verdict",
        "topology",
        "pairs",
        "findings",
        "confirm",
        "kernel-log",
        "unread",
    ] {
        assert!(
            dom.contains(&format!("id=\"{section}\"")),
            "{name}: no {section} section"
        );
    }

    let png = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    browse(
        browser,
        html,
        &[
            "--window-size=1400,2400",
            &format!("--screenshot={}", png.display()),
        ],
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "{name}: screenshot {} is {size} bytes",
        png.display()
    );
}

#[test]
fn lab_reports_load_cleanly_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut captures: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join("lab"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    captures.sort();
    assert!(!captures.is_empty());
    for cap in captures {
        let name = cap
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".tar.gz")
            .to_string();
        let (html, json) = report(&cap, dir.path(), &name);
        check_in_browser(browser, &name, &html, &json);
    }
}

#[test]
fn eight_gpu_report_loads_cleanly_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    for name in ["hgx_8gpu_two_level_switches", "two_socket_server"] {
        let built = build(name);
        let (html, json) = report(&built.root(), dir.path(), name);
        check_in_browser(browser, name, &html, &json);
    }
}

#[test]
fn hostile_text_stays_text() {
    // A host name and kernel-log line that would be markup if not escaped.
    let (_dir, root) = variant(|v| {
        v["host"]["hostname"] =
            toml::Value::String("<script>document.title='pwned'</script>".into());
        v["host"]["kernel_log"] = toml::Value::Array(vec![toml::Value::String(
            "[    1.0] pci 0000:00:01.0: <img src=x onerror=alert(1)> ACS".into(),
        )]);
    });
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = report(&root, dir.path(), "hostile");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(!text.contains("<script>document"), "host name not escaped");
    assert!(!text.contains("<img"), "kernel log not escaped");
    assert!(text.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let Some(browser) = chromium() else { return };
    check_in_browser(browser, "hostile-text", &html, &json);
}

#[test]
fn report_refuses_other_formats_and_writes_html() {
    let built = build("acs_switch");
    let out = p2pdoctor()
        .arg("--root")
        .arg(built.root())
        .args(["report", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("check --format"));
    // Without -o: to standard output, and `check --format html` is the same
    // document.
    let report = common::stdout_ok(&built.root(), &["report"]);
    assert!(report.starts_with("<!DOCTYPE html>"));
    let check = common::run(&built.root(), &["check", "--format", "html"]);
    assert_eq!(String::from_utf8_lossy(&check.stdout), report);
}
