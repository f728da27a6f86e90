//! CLI (filled in by the main session).
pub fn main() -> i32 { 0 }
