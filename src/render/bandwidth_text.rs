//! The bandwidth bound between GPUs and NICs, in `check`'s text: a matrix
//! shaped like the topology one, each cell the most the path can carry in
//! one direction (the narrowest link on it, GB/s).

use std::io::{self, Write};

use super::style::Painter;
use crate::diagnose::Diagnosis;
use crate::diagnose::matrix::DeviceKind;

/// Writes nothing unless two GPUs or NICs are in the class matrix and some
/// bound between them is known.
pub(crate) fn write(d: &Diagnosis, p: &Painter, out: &mut dyn Write) -> io::Result<()> {
    let Some(m) = &d.class_matrix else {
        return Ok(());
    };
    let rows: Vec<usize> = (0..m.devices.len())
        .filter(|&i| matches!(m.devices[i].kind, DeviceKind::Gpu | DeviceKind::Nic))
        .collect();
    let known = rows.iter().any(|&i| {
        rows.iter()
            .any(|&j| i != j && m.cells[i][j].bandwidth_bound.is_some())
    });
    if rows.len() < 2 || !known {
        return Ok(());
    }
    writeln!(
        out,
        "\n{}",
        p.bold("bandwidth bound (GB/s one direction: the narrowest link on each path, by trained speed and width)")
    )?;
    let text = |i: usize, j: usize| -> String {
        if i == j {
            return "X".into();
        }
        match m.cells[i][j].bandwidth_bound {
            Some(g) => format!("{g:.1}"),
            None => "?".into(),
        }
    };
    let width = rows
        .iter()
        .flat_map(|&i| rows.iter().map(move |&j| (i, j)))
        .map(|(i, j)| text(i, j).len())
        .chain(rows.iter().map(|&i| m.devices[i].label.len()))
        .max()
        .unwrap_or(4)
        .max(4);
    let label_width = rows
        .iter()
        .map(|&i| m.devices[i].label.len())
        .max()
        .unwrap_or(4);
    let mut head = format!("  {:label_width$}", "");
    for &j in &rows {
        head.push_str(&format!("  {:>width$}", m.devices[j].label));
    }
    writeln!(out, "{head}")?;
    for &i in &rows {
        let mut line = format!("  {:label_width$}", m.devices[i].label);
        for &j in &rows {
            line.push_str(&format!("  {:>width$}", text(i, j)));
        }
        writeln!(out, "{line}")?;
    }
    if rows
        .iter()
        .any(|&i| rows.iter().any(|&j| text(i, j) == "?"))
    {
        writeln!(out, "  {}", p.dim("? a link on the path could not be read"))?;
    }
    Ok(())
}
