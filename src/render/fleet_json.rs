//! `fleet --format json`: the [`Fleet`] as a versioned document
//! (schema/fleet.schema.json).

use std::io::{self, Write};

use serde::Serialize;

use crate::fleet::Fleet;

/// Bumped when a field changes meaning or goes away.
pub const FLEET_SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: super::ToolBlock,
    outlier_nodes: usize,
    #[serde(flatten)]
    fleet: &'a Fleet,
}

pub fn render(f: &Fleet, out: &mut dyn Write) -> io::Result<()> {
    let doc = Document {
        schema_version: FLEET_SCHEMA_VERSION,
        tool: super::ToolBlock::THIS,
        outlier_nodes: f.outlier_nodes(),
        fleet: f,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
