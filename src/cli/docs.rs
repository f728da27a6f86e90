//! The options of the commands that read no machine: `man`,
//! `completions`, `explain` and `rules`.

use std::path::PathBuf;

use clap::Args;

/// For commands that read no machine (`explain`, `rules`, `man`,
/// `completions`): `--root` is global, and clap does not propagate a global
/// argument into a subcommand that has its own of the same id, so this
/// hidden one keeps `--root` out of their help and suggestions. A value
/// given anyway (`p2pdoctor --root X explain P2P301`) is accepted and has no
/// effect, as before.
#[derive(Debug, Args)]
pub struct ReadsNoMachine {
    #[arg(long = "root", id = "root", hide = true, value_name = "PATH")]
    root: Option<PathBuf>,
}
#[derive(Debug, Args)]
pub struct ManArgs {
    #[command(flatten)]
    pub no_machine: ReadsNoMachine,

    /// The command (`check`, `topo`, ...); the whole tool when left out.
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,

    /// Write every page into DIR instead (p2pdoctor.1 and one
    /// p2pdoctor-COMMAND.1 per command), for packagers: `man/man1` of a
    /// package's tree. DIR is created; existing pages are replaced.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[command(flatten)]
    pub no_machine: ReadsNoMachine,

    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub no_machine: ReadsNoMachine,

    /// The rule: its ID (P2P301) or name (acs-redirect).
    #[arg(value_name = "ID")]
    pub rule: String,

    /// Read the rule catalog from DIR/catalog.toml.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,
}
#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub no_machine: ReadsNoMachine,

    /// Output format.
    #[arg(long, value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,

    /// Read the rule catalog from DIR/catalog.toml.
    #[arg(long, value_name = "DIR")]
    pub rules_dir: Option<PathBuf>,
}
/// Output formats of `rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RulesFormat {
    /// One line per rule: ID, name, severity, title.
    Text,
    /// Every rule's catalog entry (its words and severity), with
    /// `schema_version`.
    Json,
}
