//! `copy` for people: what moved, how fast, whether every byte arrived,
//! what the kernel said, and that the destination was put back.

use std::io::{self, Write};

use super::style::{Painter, TerminalSafe};
use crate::confirm::buffer::BufferKind;
use crate::confirm::copy::{CopyReport, Outcome, PassReport};
use crate::units::human_bytes;

fn pass_line(p: &Painter, label: &str, r: &PassReport) -> String {
    let lat = r
        .latency_us
        .map(|l| {
            format!(
                "   latency p50 {} p99 {} max {}",
                us(l.p50),
                us(l.p99),
                us(l.max)
            )
        })
        .unwrap_or_default();
    let mut s = format!(
        "  {:<9} {:>10} in {:.3} s  {}  {:>8.0} IOPS{lat}",
        label,
        human_bytes(r.bytes),
        r.seconds,
        p.bold(&format!("{:>11}", crate::units::rate(r.gbps))),
        r.iops,
    );
    if let Some(f) = &r.failure {
        s.push_str(&format!("\n  {:<9} {}", "", p.bad(&f.message)));
    }
    s
}

fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

/// Writes the report.
pub fn render(r: &CopyReport, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let out = &mut TerminalSafe::new(out);
    let p = Painter { enabled: color };
    let via = match r.via.kind {
        BufferKind::P2pmem => format!(
            "P2P memory of {}",
            r.via.bdf.as_deref().unwrap_or_else(|| r
                .via
                .path
                .as_ref()
                .and_then(|x| x.to_str())
                .unwrap_or("?"))
        ),
        BufferKind::StandIn => format!(
            "{} (a stand-in file: host memory, not P2P)",
            r.via
                .path
                .as_ref()
                .map(|x| x.display().to_string())
                .unwrap_or_default()
        ),
        BufferKind::Host => "host memory".to_string(),
    };
    let what = match (&r.src, &r.dst) {
        (Some(s), Some(d)) => format!("{} → {via} → {}", s.path.display(), d.path.display()),
        (Some(s), None) => format!("{} → {via}", s.path.display()),
        (None, Some(d)) => format!("{via} → {}", d.path.display()),
        (None, None) => via.clone(),
    };
    let pr = &r.params;
    let amount = match pr.duration_s {
        Some(d) => format!("{d} s over {}", human_bytes(pr.size)),
        None => human_bytes(pr.size),
    };
    writeln!(out, "{}", p.bold(&format!("p2pdoctor copy: {what}")))?;
    writeln!(
        out,
        "  {} {amount}, chunk {}, queue depth {}, {} engine{}{}",
        r.mode,
        human_bytes(pr.chunk as u64),
        pr.qd,
        pr.engine.as_str(),
        if pr.repeat > 1 {
            format!(", {} runs", pr.repeat)
        } else {
            String::new()
        },
        match (
            r.src.as_ref().map(|s| s.offset),
            r.dst.as_ref().map(|d| d.offset)
        ) {
            (Some(0), None | Some(0)) | (None, Some(0)) => String::new(),
            (s, d) => format!(
                ", offset {}",
                [s, d]
                    .iter()
                    .flatten()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        }
    )?;
    writeln!(out)?;
    let main_label = if r.via.kind == BufferKind::Host {
        "host"
    } else {
        "P2P"
    };
    if r.runs.len() > 1 {
        for (i, run) in r.runs.iter().enumerate() {
            if let Some(m) = &run.main {
                writeln!(
                    out,
                    "{}",
                    pass_line(&p, &format!("{main_label} #{}", i + 1), m)
                )?;
            }
        }
    }
    if let Some(m) = &r.main {
        writeln!(out, "{}", pass_line(&p, main_label, m))?;
    }
    if let Some(b) = &r.baseline {
        writeln!(out, "{}", pass_line(&p, "host", b))?;
    }
    if let Some(x) = r.ratio {
        writeln!(
            out,
            "  {:<9} {:.2} (P2P throughput / host-bounce throughput)",
            "ratio", x
        )?;
    }
    if let Some(v) = r.verify {
        let line = if v.matches() {
            p.good(&format!("all {} bytes match", v.bytes_compared))
        } else {
            p.bad(&format!(
                "{} of {} bytes differ, first at offset {}; {} never arrived (still the fill pattern){}",
                v.bytes_differ,
                v.bytes_compared,
                v.first_mismatch.unwrap_or(0),
                v.untouched,
                if v.stale_buffer > 0 {
                    format!("; {} hold the P2P buffer's fill pattern (SRC never reached the buffer)", v.stale_buffer)
                } else {
                    String::new()
                }
            ))
        };
        writeln!(out, "  {:<9} {line}", "verify")?;
    }
    if let Some(rs) = &r.restore {
        let m = if rs.restored {
            p.dim(&rs.message)
        } else {
            p.bad(&rs.message)
        };
        writeln!(out, "  {:<9} {m}", "restore")?;
    }
    if !r.kernel_log.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "  kernel log during the transfer ({} lines):",
            r.kernel_log.len()
        )?;
        for l in r.kernel_log.iter().take(20) {
            writeln!(out, "    {l}")?;
        }
        if r.kernel_log.len() > 20 {
            writeln!(
                out,
                "    … {} more (see --format json)",
                r.kernel_log.len() - 20
            )?;
        }
    } else if let Some(why) = &r.kernel_log_unavailable {
        writeln!(out, "  {:<9} {}", "note", p.dim(why))?;
    }
    for n in &r.notes {
        writeln!(out, "  {:<9} {}", "note", p.dim(n))?;
    }
    writeln!(out)?;
    let head = match r.outcome {
        Outcome::Ok => p.good("OK"),
        Outcome::Refused => p.bad(&format!(
            "REFUSED{}",
            r.errno_name.map(|e| format!(" ({e})")).unwrap_or_default()
        )),
        Outcome::Mismatch => p.bad("MISMATCH"),
        Outcome::Error => p.bad("ERROR"),
        Outcome::Interrupted => p.warn("INTERRUPTED"),
    };
    writeln!(out, "{head}: {}", r.message)?;
    Ok(())
}
