//! `diff` as text: one block per class of change, most consequential first.

use std::io::{self, Write};

use crate::compare::{ChangeClass, Diff};
use crate::render::style::{Painter, TerminalSafe};

fn heading(class: ChangeClass) -> &'static str {
    match class {
        ChangeClass::Pair => "pairs (the kernel's decision or the path changed)",
        ChangeClass::Finding => "findings",
        ChangeClass::Acs => "ACS control",
        ChangeClass::Iommu => "IOMMU",
        ChangeClass::Kernel => "kernel",
        ChangeClass::Cmdline => "kernel command line",
        ChangeClass::Device => "devices",
        ChangeClass::Link => "links",
        ChangeClass::P2pmem => "P2P memory",
        ChangeClass::Cpu => "CPU",
    }
}

pub fn render(d: &Diff, color: bool, out: &mut dyn Write) -> io::Result<()> {
    // Command lines, names and paths come from the inputs: escape them.
    let out = &mut TerminalSafe::new(out);
    let p = Painter { enabled: color };
    writeln!(out, "{} {}", p.dim("a:"), d.a)?;
    writeln!(out, "{} {}", p.dim("b:"), d.b)?;
    if d.same() {
        writeln!(
            out,
            "\n{}{}",
            p.good("no difference that matters for P2P"),
            ignored_note(d)
        )?;
        return Ok(());
    }
    let mut class = None;
    for c in &d.changes {
        if class != Some(c.class) {
            class = Some(c.class);
            writeln!(out, "\n{}", p.bold(heading(c.class)))?;
        }
        let before = c.before.as_deref().unwrap_or("(none)");
        let after = c.after.as_deref().unwrap_or("(none)");
        let line = match (&c.before, &c.after) {
            (Some(_), None) if c.what == "removed" => format!("- {}: {before}", c.subject),
            (None, Some(_)) if c.what == "added" => format!("+ {}: {after}", c.subject),
            (Some(_), None) => format!("- {}: {} {before}", c.subject, c.what),
            (None, Some(_)) => format!("+ {}: {} {after}", c.subject, c.what),
            _ => format!("~ {}: {} {before} → {after}", c.subject, c.what),
        };
        let painted = match line.chars().next() {
            Some('-') => p.bad(&line),
            Some('+') => p.good(&line),
            _ => p.warn(&line),
        };
        writeln!(out, "  {painted}")?;
    }
    writeln!(
        out,
        "\n{} {}{}",
        d.changes.len(),
        if d.changes.len() == 1 {
            "difference"
        } else {
            "differences"
        },
        ignored_note(d)
    )
}

fn ignored_note(d: &Diff) -> String {
    if d.ignored.is_empty() {
        String::new()
    } else {
        format!(
            " (ignored: {})",
            d.ignored
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
