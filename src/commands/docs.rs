//! `man`, `completions`, `explain` and `rules`: the tool describing itself.

use anyhow::{Context, Result};

use super::{load_catalog, write_output};
use crate::cli::{
    Cli, CompletionsArgs, ExplainArgs, GlobalArgs, ManArgs, RulesArgs, RulesFormat, VERSION,
};

/// `p2pdoctor completions SHELL`.
pub fn completions(args: CompletionsArgs) -> Result<i32> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "p2pdoctor", &mut buf);
    write_output(None, &buf, true)?;
    Ok(0)
}

/// `p2pdoctor man [COMMAND]`: the page, generated from these definitions.
pub fn run_man(args: ManArgs) -> Result<i32> {
    use clap::CommandFactory;
    let top = Cli::command();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        let mut pages = vec![("p2pdoctor.1".to_string(), top.clone())];
        pages.extend(
            top.get_subcommands()
                .map(|sub| (format!("p2pdoctor-{}.1", sub.get_name()), man_page_of(sub))),
        );
        for (file, cmd) in pages {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            let path = dir.join(&file);
            std::fs::write(&path, &buf)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(0);
    }
    let cmd = match &args.command {
        None => top,
        Some(name) => {
            let found = top.get_subcommands().find(|c| c.get_name() == name);
            let Some(sub) = found else {
                let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
                anyhow::bail!(
                    "no command `{name}`; the commands are: {}",
                    names.join(", ")
                );
            };
            man_page_of(sub)
        }
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    write_output(None, &buf, true)?;
    Ok(0)
}

/// A command's page is named p2pdoctor-<command>, as man(1) looks it up.
fn man_page_of(sub: &clap::Command) -> clap::Command {
    sub.clone()
        .name(format!("p2pdoctor-{}", sub.get_name()))
        .version(VERSION)
}

/// `p2pdoctor explain <ID>`.
pub fn run_explain(global: &GlobalArgs, args: ExplainArgs) -> Result<i32> {
    let catalog = load_catalog(args.rules_dir.as_deref())?;
    let Some(rule) = catalog.find(args.rule.trim()) else {
        let near = catalog.suggest(args.rule.trim());
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", near.join(", "))
        };
        anyhow::bail!(
            "no rule `{}`{hint}; `p2pdoctor rules` lists them all",
            args.rule
        );
    };
    let mut buf = Vec::new();
    crate::render::check_text::render_explain(rule, super::color(global), &mut buf)?;
    write_output(None, &buf, true)?;
    Ok(0)
}

/// `p2pdoctor rules`.
pub fn run_rules(global: &GlobalArgs, args: RulesArgs) -> Result<i32> {
    let catalog = load_catalog(args.rules_dir.as_deref())?;
    let mut buf = Vec::new();
    match args.format {
        RulesFormat::Text => {
            crate::render::check_text::render_rules(&catalog, super::color(global), &mut buf)?
        }
        RulesFormat::Json => crate::render::check_json::render_rules(&catalog, &mut buf)?,
    }
    write_output(None, &buf, true)?;
    Ok(0)
}
