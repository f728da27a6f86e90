//! `diff --format json`: the [`Diff`] as a versioned document
//! (schema/diff.schema.json).

use std::io::{self, Write};

use serde::Serialize;

use crate::compare::Diff;

/// Bumped when a field changes meaning or goes away.
pub const DIFF_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: super::ToolBlock,
    same: bool,
    #[serde(flatten)]
    diff: &'a Diff,
}

pub fn render(d: &Diff, out: &mut dyn Write) -> io::Result<()> {
    let doc = Document {
        schema_version: DIFF_SCHEMA_VERSION,
        tool: super::ToolBlock::THIS,
        same: d.same(),
        diff: d,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
