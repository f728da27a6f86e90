//! Turning values into bytes: one file per output format.
//!
//! Each format implements [`Render`] for the value it shows; the CLI picks
//! one by [`Format`]. Renderers know formats and nothing about sysfs.

mod bandwidth_text;
pub mod check_json;
pub mod check_junit;
pub mod check_prometheus;
pub mod check_text;
pub mod copy_json;
pub mod copy_text;
pub mod diff_json;
pub mod diff_text;
pub mod dot;
pub mod fleet_json;
pub mod fleet_text;
pub mod json;
pub mod picture;
mod pretty;
pub mod report_html;
pub mod style;
pub mod text;
pub mod wrap;

use std::io::{self, Write};

use crate::topology::Tree;

/// The JSON schema version of `topo --format json`. Bump on any change
/// that removes or retypes a field; adding fields keeps it.
pub const TOPO_SCHEMA_VERSION: u32 = 1;

/// Output formats, as `--format` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A tree for people, like `lspci -tv`.
    Text,
    /// Machine-readable, with `schema_version`.
    Json,
    /// Graphviz: pipe into `dot -Tsvg`.
    Dot,
}

/// Context every renderer gets besides the value.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Emit ANSI colour (text only).
    pub color: bool,
    /// How the root was named (`the live system (/)`, a path).
    pub source: String,
    /// `check --format json`: every pair's row carries its path's fields
    /// (`check --expand-pairs`).
    pub expand_pairs: bool,
    /// Wrap prose to this many columns (text only); None: no wrapping
    /// (piped output without --width). See [`wrap::resolve`].
    pub width: Option<usize>,
}

/// A renderer of a topology.
pub trait Render {
    fn render(&self, tree: &Tree, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()>;
}

/// The renderer for a format.
pub fn topo_renderer(format: Format) -> Box<dyn Render> {
    match format {
        Format::Text => Box::new(text::TextTree),
        Format::Json => Box::new(json::JsonTopo),
        Format::Dot => Box::new(dot::DotGraph),
    }
}

/// The `tool` block every versioned JSON document carries.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ToolBlock {
    pub name: &'static str,
    pub version: &'static str,
}

impl ToolBlock {
    pub const THIS: ToolBlock = ToolBlock {
        name: "p2pdoctor",
        version: env!("CARGO_PKG_VERSION"),
    };
}
