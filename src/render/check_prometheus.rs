//! `check --format prometheus`: the diagnosis in the Prometheus text
//! exposition format, for node_exporter's textfile collector
//! (`--collector.textfile.directory`): write it to `<dir>/p2pdoctor.prom`
//! (through a temporary file and a rename, as the collector's docs ask).
//!
//! Names follow the Prometheus conventions: `p2pdoctor_` prefix, snake
//! case, base units (`_seconds`), `_info` metrics with value 1 carrying
//! labels, and state sets (one series per state, 1 for the one that holds)
//! for enumerations. Every metric is a gauge: each run replaces the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::diagnose::{Diagnosis, MapType, Severity};

/// When the run happened and how long the scan and diagnosis took, which
/// the renderer cannot know itself.
#[derive(Debug, Clone, Copy)]
pub struct RunStamp {
    /// Seconds since the Unix epoch.
    pub unix_seconds: f64,
    pub duration_seconds: f64,
}

/// A label value as the exposition format wants it: backslash, double
/// quote and line feed escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Collects one metric family at a time: HELP, TYPE, then its samples.
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} gauge");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// Subjects of every finding of `rule`.
fn subjects_of(d: &Diagnosis, rule: &str) -> usize {
    d.findings
        .iter()
        .filter(|f| f.rule == rule)
        .flat_map(|f| f.subjects.iter())
        .collect::<BTreeSet<_>>()
        .len()
}

/// The whole exposition as text.
pub fn exposition(d: &Diagnosis, stamp: RunStamp) -> String {
    let mut e = Exposition {
        text: String::new(),
    };
    e.family(
        "p2pdoctor_build_info",
        "The p2pdoctor that wrote these metrics (value 1).",
    );
    e.sample(
        "p2pdoctor_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    e.family(
        "p2pdoctor_last_run_timestamp_seconds",
        "When the check ran, in seconds since the Unix epoch.",
    );
    e.sample(
        "p2pdoctor_last_run_timestamp_seconds",
        &[],
        stamp.unix_seconds,
    );
    e.family(
        "p2pdoctor_run_duration_seconds",
        "How long the scan and diagnosis took.",
    );
    e.sample(
        "p2pdoctor_run_duration_seconds",
        &[],
        stamp.duration_seconds,
    );

    e.family(
        "p2pdoctor_verdict",
        "The verdict of the kernel's rules as a state set: 1 for the one that holds (clear, warnings, errors).",
    );
    for v in ["clear", "warnings", "errors"] {
        let on = d.summary.verdict.predicted.as_str() == v;
        e.sample(
            "p2pdoctor_verdict",
            &[("verdict", v)],
            f64::from(u8::from(on)),
        );
    }

    e.family(
        "p2pdoctor_verdict_verified",
        "What transfers (check --confirm) established, as a state set: untested when none ran.",
    );
    let verified = d
        .summary
        .verdict
        .verified
        .as_ref()
        .map_or("untested", |v| v.outcome.as_str());
    for v in [
        "untested",
        "as_predicted",
        "data_mismatch",
        "not_as_predicted",
        "unsettled",
    ] {
        e.sample(
            "p2pdoctor_verdict_verified",
            &[("outcome", v)],
            f64::from(u8::from(verified == v)),
        );
    }
    e.family(
        "p2pdoctor_suppressed_findings",
        "Findings a config file suppressed (each with a reason in --format json).",
    );
    e.sample(
        "p2pdoctor_suppressed_findings",
        &[],
        d.summary.suppressed as f64,
    );

    e.family(
        "p2pdoctor_findings",
        "Findings by severity (refuted ones are not counted).",
    );
    for sev in [Severity::Error, Severity::Warning, Severity::Info] {
        let n = d
            .findings
            .iter()
            .filter(|f| f.severity == sev && f.status != crate::diagnose::Status::Refuted)
            .count();
        e.sample(
            "p2pdoctor_findings",
            &[("severity", sev.as_str())],
            n as f64,
        );
    }
    e.family(
        "p2pdoctor_rule_findings",
        "Findings by rule, severity and status (predicted, confirmed, refuted, inconclusive).",
    );
    let mut by_rule: BTreeMap<(&str, &str, &str, &str), usize> = BTreeMap::new();
    for f in &d.findings {
        *by_rule
            .entry((&f.rule, &f.name, f.severity.as_str(), f.status.as_str()))
            .or_default() += 1;
    }
    for ((rule, name, sev, status), n) in by_rule {
        e.sample(
            "p2pdoctor_rule_findings",
            &[
                ("rule", rule),
                ("name", name),
                ("severity", sev),
                ("status", status),
            ],
            n as f64,
        );
    }

    e.family(
        "p2pdoctor_pairs",
        "Device pairs by the kernel's predicted P2PDMA map type.",
    );
    for (mt, n) in [
        (MapType::BusAddr, d.summary.bus_addr),
        (MapType::ThruHostBridge, d.summary.thru_host_bridge),
        (MapType::NotSupported, d.summary.not_supported),
    ] {
        e.sample("p2pdoctor_pairs", &[("map_type", mt.as_str())], n as f64);
    }
    e.family(
        "p2pdoctor_pair_map_type",
        "Each pair's predicted P2PDMA map type as a state set (1 for the one the kernel will choose).",
    );
    for p in &d.pairs {
        let (prov, client) = (p.provider().to_string(), p.client().to_string());
        for mt in [
            MapType::BusAddr,
            MapType::ThruHostBridge,
            MapType::NotSupported,
        ] {
            e.sample(
                "p2pdoctor_pair_map_type",
                &[
                    ("provider", &prov),
                    ("client", &client),
                    ("map_type", mt.as_str()),
                ],
                f64::from(u8::from(p.verdict().map_type == mt)),
            );
        }
    }
    e.family(
        "p2pdoctor_pair_info",
        "Each pair's path class in NVML's meanings (physical wiring, and where the TLPs really go) and whether the prediction is certain (value 1).",
    );
    for p in &d.pairs {
        e.sample(
            "p2pdoctor_pair_info",
            &[
                ("provider", &p.provider().to_string()),
                ("client", &p.client().to_string()),
                ("path_class", p.path_class().as_str()),
                ("effective_path_class", p.effective_path_class().as_str()),
                (
                    "certain",
                    if p.verdict().certain() {
                        "true"
                    } else {
                        "false"
                    },
                ),
            ],
            1.0,
        );
    }
    e.family(
        "p2pdoctor_pair_distance",
        "Each pair's P2PDMA distance as the kernel computes it.",
    );
    for p in &d.pairs {
        e.sample(
            "p2pdoctor_pair_distance",
            &[
                ("provider", &p.provider().to_string()),
                ("client", &p.client().to_string()),
            ],
            f64::from(p.verdict().distance),
        );
    }

    let acs: BTreeSet<_> = d
        .pairs
        .iter()
        .flat_map(|p| p.verdict().acs_redirect.iter())
        .collect();
    e.family(
        "p2pdoctor_acs_redirect_bridges",
        "Bridges whose ACS redirect (RR, CR or EC) sends some pair's traffic to the root complex.",
    );
    e.sample("p2pdoctor_acs_redirect_bridges", &[], acs.len() as f64);
    e.family(
        "p2pdoctor_degraded_links",
        "Links on P2P paths that trained below what both ends can do (rule P2P702).",
    );
    e.sample(
        "p2pdoctor_degraded_links",
        &[],
        subjects_of(d, "P2P702") as f64,
    );
    e.family(
        "p2pdoctor_aer_error_devices",
        "Devices on P2P paths with AER error status bits set (rule P2P704).",
    );
    e.sample(
        "p2pdoctor_aer_error_devices",
        &[],
        subjects_of(d, "P2P704") as f64,
    );
    e.text
}

pub fn render(d: &Diagnosis, stamp: RunStamp, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(exposition(d, stamp).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }
}
