//! The `check` config file: suppressions, each with a reason.
//!
//! ```toml
//! [[suppress]]
//! rule = "P2P402"              # an ID or a name (p2pdoctor rules)
//! device = "0000:03:00.0"      # optional: a BDF or an OS name (nvme0)
//! reason = "this pair is only used for metadata"
//! ```
//!
//! Found as `--config FILE`, else `p2pdoctor.toml` in the working
//! directory, else `$XDG_CONFIG_HOME/p2pdoctor/config.toml` (XDG_CONFIG_HOME
//! defaults to `~/.config`): the first that exists, only that one. The
//! command handler reads it; parsing is pure ([`parse`]). Every error names
//! the file and the line.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::diagnose::Catalog;
use crate::diagnose::select::Suppression;

/// A parsed config file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// How the file is named in the report (`p2pdoctor.toml`).
    pub file: String,
    pub suppress: Vec<Suppression>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    suppress: Vec<Spanned<RawSuppress>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppress {
    rule: Spanned<String>,
    device: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// Parses a config file's text; `file` names it in errors and in the report.
/// Errors read `FILE:LINE: what is wrong; what to do`.
pub fn parse(text: &str, file: &str, catalog: &Catalog) -> Result<Config, String> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        format!(
            "{file}:{line}: {}; a config file holds [[suppress]] tables with rule, device (optional) and reason",
            e.message().trim_end()
        )
    })?;
    let mut suppress = Vec::new();
    for table in raw.suppress {
        let line = line_of(text, table.span().start);
        let t = table.into_inner();
        let rule_line = line_of(text, t.rule.span().start);
        let rule = t.rule.into_inner();
        let Some(info) = catalog
            .rules
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(&rule) || r.name == rule)
        else {
            return Err(format!(
                "{file}:{rule_line}: rule = \"{rule}\" is not a p2pdoctor rule; `p2pdoctor rules` lists their IDs and names"
            ));
        };
        let reason = match t.reason {
            Some(r) if !r.get_ref().trim().is_empty() => r.into_inner(),
            Some(r) => {
                return Err(format!(
                    "{file}:{}: the reason is empty; say why this finding does not apply here",
                    line_of(text, r.span().start)
                ));
            }
            None => {
                return Err(format!(
                    "{file}:{line}: this [[suppress]] has no reason; add reason = \"...\" saying why {} does not apply here",
                    info.id
                ));
            }
        };
        let device = match t.device {
            Some(d) if d.get_ref().trim().is_empty() => {
                return Err(format!(
                    "{file}:{}: device is empty; give a BDF (0000:03:00.0) or an OS name (nvme0), or leave device out to suppress every {} finding",
                    line_of(text, d.span().start),
                    info.id
                ));
            }
            Some(d) => Some(d.into_inner().trim().to_string()),
            None => None,
        };
        suppress.push(Suppression {
            rule: info.id.clone(),
            device,
            reason,
            file: file.to_string(),
            line,
        });
    }
    Ok(Config {
        file: file.to_string(),
        suppress,
    })
}

/// The config file to read: `explicit`, else the first of
/// `./p2pdoctor.toml` and `$XDG_CONFIG_HOME/p2pdoctor/config.toml` that
/// exists. None: no config.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let here = PathBuf::from("p2pdoctor.toml");
    if here.is_file() {
        return Some(here);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let xdg = base.join("p2pdoctor").join("config.toml");
    xdg.is_file().then_some(xdg)
}

/// Reads and parses the config file, if there is one.
pub fn load(explicit: Option<&Path>, catalog: &Catalog) -> anyhow::Result<Option<Config>> {
    let Some(path) = locate(explicit) else {
        return Ok(None);
    };
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the config file {file}: {e}"))?;
    parse(&text, &file, catalog)
        .map(Some)
        .map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::embedded()
    }

    #[test]
    fn suppressions_with_reasons() {
        let text = "# site\n[[suppress]]\nrule = \"root-complex-p2p\"\ndevice = \"nvme0\"\nreason = \"metadata only\"\n\n[[suppress]]\nrule = \"p2p502\"\nreason = \"known\"\n";
        let c = parse(text, "p2pdoctor.toml", &catalog()).unwrap();
        assert_eq!(c.suppress.len(), 2);
        assert_eq!(c.suppress[0].rule, "P2P402");
        assert_eq!(c.suppress[0].device.as_deref(), Some("nvme0"));
        assert_eq!(c.suppress[0].line, 2);
        assert_eq!(c.suppress[1].rule, "P2P502");
        assert_eq!(c.suppress[1].line, 7);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "[[suppress]]\nrule = \"P2P402\"\n",
                "x.toml:1:",
                "no reason",
            ),
            (
                "\n[[suppress]]\nrule = \"P2P999\"\nreason = \"r\"\n",
                "x.toml:3:",
                "not a p2pdoctor rule",
            ),
            (
                "[[suppress]]\nrule = \"P2P402\"\nreason = \"  \"\n",
                "x.toml:3:",
                "empty",
            ),
            (
                "[[suppress]]\nrule = \"P2P402\"\nreason = \"r\"\nwhy = 1\n",
                "x.toml:4:",
                "unknown field",
            ),
            (
                "[[suppress]]\nrule = \"P2P402\nreason = \"r\"\n",
                "x.toml:2:",
                "",
            ),
        ];
        for (text, at, what) in cases {
            let e = parse(text, "x.toml", &catalog()).unwrap_err();
            assert!(e.starts_with(at), "{text:?}: {e}");
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }
}
