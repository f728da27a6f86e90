//! The rule catalog: the words behind every rule (`rules/catalog.toml`).
//!
//! Rust code holds the logic (one file per rule family in `checks/`); the
//! catalog holds what each rule checks, why it matters, an example, how to
//! fix it, references and the experiment that confirms it. `p2pdoctor
//! explain <ID>` and `p2pdoctor rules` print it.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The embedded `rules/catalog.toml`.
pub const CATALOG: &str = include_str!("../../rules/catalog.toml");

/// How bad a finding is. Ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The kernel will refuse, or data can be lost.
    Error,
    /// It works, but worse than it could, or at a risk.
    Warning,
    /// Worth knowing; nothing to fix.
    Info,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleInfo {
    /// Stable ID: `P2P301`.
    pub id: String,
    /// Stable short name: `acs-redirect`.
    pub name: String,
    /// One line.
    pub title: String,
    /// The most severe level its findings take.
    pub severity: Severity,
    /// The rule family (the file in `src/diagnose/checks/`).
    pub family: String,
    /// What it checks.
    pub checks: String,
    /// Why it matters.
    pub why: String,
    /// An example of what it reports.
    pub example: String,
    /// How to fix.
    pub fix: String,
    /// Kernel functions, specification sections, threads.
    #[serde(default)]
    pub references: Vec<String>,
    /// Which experiment confirms it.
    pub confirm: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    rule: Vec<RuleInfo>,
}

/// The whole catalog, in ID order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Catalog {
    pub rules: Vec<RuleInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("rule catalog is not valid TOML or has a wrong field: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("rule catalog: {0}")]
    Invalid(String),
    #[error("cannot read rule catalog {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Rule IDs in numeric order (P2P903 before P2P1001): shorter first.
pub fn id_order(id: &str) -> (usize, &str) {
    (id.len(), id)
}

impl Catalog {
    /// The embedded catalog.
    pub fn embedded() -> Catalog {
        // Checked by a unit test; failing here is a build defect.
        Catalog::parse(CATALOG).expect("rules/catalog.toml is valid")
    }

    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text)?;
        let mut rules = raw.rule;
        rules.sort_by(|a, b| id_order(&a.id).cmp(&id_order(&b.id)));
        for w in rules.windows(2) {
            if w[0].id == w[1].id {
                return Err(CatalogError::Invalid(format!(
                    "rule {} appears twice",
                    w[0].id
                )));
            }
        }
        let mut names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(CatalogError::Invalid(format!(
                "rule name {} appears twice",
                w[0]
            )));
        }
        Ok(Catalog { rules })
    }

    /// Reads `catalog.toml` from a directory given on the command line.
    pub fn from_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let path = dir.join("catalog.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Catalog::parse(&text)
    }

    /// By ID (`P2P301`, any case) or name (`acs-redirect`).
    pub fn find(&self, key: &str) -> Option<&RuleInfo> {
        self.rules
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(key) || r.name == key)
    }

    /// IDs close to `key`, for an error message.
    pub fn suggest(&self, key: &str) -> Vec<&str> {
        let k = key.to_ascii_lowercase();
        self.rules
            .iter()
            .filter(|r| {
                let (id, name) = (r.id.to_ascii_lowercase(), r.name.as_str());
                (!k.is_empty() && (id.contains(&k) || name.contains(&k) || k.contains(name)))
                    || id.get(..5) == k.get(..5)
            })
            .map(|r| r.id.as_str())
            .take(5)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_complete() {
        let c = Catalog::embedded();
        assert!(c.rules.len() >= 25);
        for r in &c.rules {
            // P2P + family digit(s) + two digits: P2P301, P2P1001.
            assert!(
                r.id.starts_with("P2P") && (r.id.len() == 6 || r.id.len() == 7),
                "{}",
                r.id
            );
            assert!(
                r.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit()),
                "{}",
                r.name
            );
            for (what, text) in [
                ("title", &r.title),
                ("checks", &r.checks),
                ("why", &r.why),
                ("example", &r.example),
                ("fix", &r.fix),
                ("confirm", &r.confirm),
            ] {
                assert!(!text.trim().is_empty(), "{}: empty {what}", r.id);
            }
        }
        assert_eq!(
            c.find("p2p301").map(|r| r.name.as_str()),
            Some("acs-redirect")
        );
        assert_eq!(
            c.find("acs-redirect").map(|r| r.id.as_str()),
            Some("P2P301")
        );
        assert!(c.find("nope").is_none());
        assert!(c.suggest("P2P30").contains(&"P2P301"));
    }

    #[test]
    fn duplicates_are_refused() {
        let one = "[[rule]]\nid='P2P001'\nname='a'\ntitle='t'\nseverity='info'\nfamily='f'\nchecks='c'\nwhy='w'\nexample='e'\nfix='x'\nconfirm='c'\n";
        assert!(Catalog::parse(one).is_ok());
        assert!(Catalog::parse(&format!("{one}{one}")).is_err());
    }
}
