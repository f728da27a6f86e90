//! `check --format junit`: the diagnosis as JUnit XML, the report CI
//! servers (Jenkins, GitLab, GitHub Actions reporters) show as tests.
//!
//! One test suite; one test case per rule of the catalog and subject: a
//! rule that found nothing is one passing case, a rule that fired is one
//! case per device each finding names. A case fails where the finding alone would
//! make `check` exit non-zero at `--fail-on` (`Finding::fails`); the
//! failure's text carries the message, the evidence and the fix. Info
//! findings and refuted ones pass, with their message as system-out.
//! Written with quick-junit (nextest's JUnit writer).

use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::diagnose::{Catalog, Diagnosis, FailOn, Finding};

fn finding_text(f: &Finding) -> String {
    let mut text = f.message.clone();
    for e in &f.evidence {
        text.push_str("\n  ");
        text.push_str(e);
    }
    if let Some(fix) = &f.fix {
        text.push_str("\nfix: ");
        text.push_str(&fix.to_string());
    }
    text
}

/// The report as a value (for tests and other writers).
pub fn report(d: &Diagnosis, catalog: &Catalog, fail_on: FailOn, source: &str) -> Report {
    let mut suite = TestSuite::new("p2pdoctor check");
    suite.add_property(("source", source));
    suite.add_property(("verdict", d.summary.headline.as_str()));
    // The tier: predicted by the kernel's rules, or verified by a transfer.
    suite.add_property(("established", d.summary.verdict.established()));
    for rule in &catalog.rules {
        let classname = format!("p2pdoctor.{}", rule.family);
        let found: Vec<&Finding> = d.findings.iter().filter(|f| f.rule == rule.id).collect();
        if found.is_empty() {
            let mut case = TestCase::new(
                format!("{} {}", rule.id, rule.name),
                TestCaseStatus::success(),
            );
            case.set_classname(classname);
            suite.add_test_case(case);
            continue;
        }
        for f in found {
            let text = finding_text(f);
            let failure = f.fails(fail_on).then(|| {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "{} {} ({})",
                    f.severity.as_str(),
                    rule.title,
                    f.status.as_str()
                ));
                s.set_type(f.severity.as_str());
                s.set_description(text.clone());
                s
            });
            // One case per subject, so a CI server lists each device; a
            // finding about no device (the kernel, say) is one case.
            let names: Vec<String> = if f.subjects.is_empty() {
                vec![format!("{} {}", rule.id, rule.name)]
            } else {
                f.subjects
                    .iter()
                    .map(|b| format!("{} {} {b}", rule.id, rule.name))
                    .collect()
            };
            for name in names {
                let status = failure.clone().unwrap_or_else(TestCaseStatus::success);
                let mut case = TestCase::new(name, status);
                case.set_classname(classname.clone());
                case.set_system_out(text.clone());
                suite.add_test_case(case);
            }
        }
    }
    let mut report = Report::new("p2pdoctor");
    report.add_test_suite(suite);
    report
}

pub fn render(
    d: &Diagnosis,
    catalog: &Catalog,
    fail_on: FailOn,
    source: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let xml = report(d, catalog, fail_on, source)
        .to_string()
        .map_err(io::Error::other)?;
    out.write_all(xml.as_bytes())
}
