//! Which driver would take a PCI function that has none bound: the
//! function's modalias (`pci:v...d...sv...sd...bc...sc...i...`, as
//! drivers/pci/pci-sysfs.c modalias_show() prints it) matched against the
//! glob patterns of `/lib/modules/$(uname -r)/modules.alias`, which depmod
//! writes from each module's MODULE_DEVICE_TABLE (scripts/mod/file2alias.c).
//! modprobe matches the same way, with fnmatch(3)
//! (kmod's libkmod-index.c); <https://man7.org/linux/man-pages/man5/modules.alias.5.html>.

use serde::Serialize;

use crate::root::SystemRoot;

/// The `alias` lines that matched a function here, and the file they came
/// from (a snapshot keeps those lines only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModuleAliases {
    /// Root-relative path of the modules.alias read; None when none was
    /// looked for (every function has a driver) or none was found.
    pub source: Option<String>,
    /// (pattern, module) of every line that matched some function.
    pub matched: Vec<(String, String)>,
}

impl ModuleAliases {
    /// The file as a snapshot keeps it: the lines that matched.
    pub fn render(&self) -> String {
        self.matched
            .iter()
            .map(|(p, m)| format!("alias {p} {m}\n"))
            .collect()
    }
}

/// `fnmatch(pattern, text, 0)` for the patterns depmod writes: `*`, `?`
/// and bracket expressions (`[0-9]`, `[!a]`), no escapes.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = bracket(&p, pi, t[ti]) {
                        if matched {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        // An unclosed `[` is an ordinary character.
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether `c` is in the bracket expression at `p[start]` (`[`), and the
/// index after its `]`; None when the bracket is not closed.
fn bracket(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &x = p.get(i)?;
        if x == ']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let hi = p[i + 2];
            found |= x <= c && c <= hi;
            i += 3;
        } else {
            found |= x == c;
            i += 1;
        }
    }
}

/// The modules whose `pci:` aliases match `modalias`, in file order,
/// without repeats.
pub fn candidates<'a>(aliases: &'a [(String, String)], modalias: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for (pattern, module) in aliases {
        if glob_match(pattern, modalias) && !out.contains(&module.as_str()) {
            out.push(module);
        }
    }
    out
}

/// The `alias pci:... module` lines of a modules.alias file.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "alias").then_some(())?;
            let (pattern, module) = (w.next()?, w.next()?);
            pattern
                .starts_with("pci:")
                .then(|| (pattern.to_string(), module.to_string()))
        })
        .collect()
}

/// For every function without a driver (and not a gap in the tree), the
/// candidate drivers from modules.alias; fills `driver_candidates`.
pub(super) fn attach(
    root: &SystemRoot,
    release: Option<&str>,
    devices: &mut [super::DeviceFacts],
) -> ModuleAliases {
    let unbound: Vec<usize> = (0..devices.len())
        .filter(|&i| devices[i].driver.is_none() && !devices[i].missing)
        .collect();
    let Some(release) = release else {
        return ModuleAliases::default();
    };
    if unbound.is_empty() {
        return ModuleAliases::default();
    }
    let (source, text) = match [
        format!("lib/modules/{release}/modules.alias"),
        format!("usr/lib/modules/{release}/modules.alias"),
    ]
    .into_iter()
    .find_map(|p| root.read(&p).ok().map(|b| (p, b)))
    {
        Some((p, b)) => (p, String::from_utf8_lossy(&b).into_owned()),
        None => return ModuleAliases::default(),
    };
    let aliases = parse(&text);
    let mut matched: Vec<(String, String)> = Vec::new();
    for i in unbound {
        let d = &mut devices[i];
        let Ok(modalias) = root.read_string(&format!("sys/bus/pci/devices/{}/modalias", d.bdf))
        else {
            continue;
        };
        let modalias = modalias.trim();
        for (pattern, module) in &aliases {
            if glob_match(pattern, modalias) {
                if !d.driver_candidates.contains(module) {
                    d.driver_candidates.push(module.clone());
                }
                let line = (pattern.clone(), module.clone());
                if !matched.contains(&line) {
                    matched.push(line);
                }
            }
        }
    }
    ModuleAliases {
        source: Some(source),
        matched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NVME: &str = "pci:v0000144Dd0000A824sv0000144Dsd0000A801bc01sc08i02";

    #[test]
    fn globs_as_fnmatch() {
        assert!(glob_match("pci:v*d*sv*sd*bc01sc08i02*", NVME));
        assert!(glob_match("pci:v0000144Dd0000A824sv*sd*bc*sc*i*", NVME));
        assert!(!glob_match("pci:v0000144Dd0000A808sv*sd*bc*sc*i*", NVME));
        assert!(!glob_match("pci:v*d*sv*sd*bc01sc06i01*", NVME));
        assert!(glob_match("pci:v0000144Dd0000A8[0-2]4sv*", NVME));
        assert!(!glob_match("pci:v0000144Dd0000A8[!2]4sv*", NVME));
        assert!(glob_match("pci:v0000144Dd0000A82?sv*", NVME));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYb"));
        assert!(glob_match("[", "["), "an unclosed bracket is literal");
        assert!(glob_match("[]]", "]"), "a leading ] is a member");
    }

    #[test]
    fn candidates_in_file_order_without_repeats() {
        let aliases = parse(
            "# Aliases extracted from modules themselves.\n\
             alias pci:v0000144Dd0000A824sv*sd*bc*sc*i* nvme\n\
             alias usb:v1D6Bp0002d*dc*dsc*dp*ic*isc*ip*in* hub\n\
             alias pci:v*d*sv*sd*bc01sc08i02* nvme\n\
             alias pci:v*d*sv*sd*bc01sc08i02* vfio_pci_dummy\n\
             alias pci:v000010DEd*sv*sd*bc03sc*i* nouveau\n",
        );
        assert_eq!(aliases.len(), 4, "only pci: aliases");
        assert_eq!(candidates(&aliases, NVME), ["nvme", "vfio_pci_dummy"]);
        assert!(candidates(&aliases, "pci:v000010DEd00002330sv*").is_empty());
        assert_eq!(
            candidates(
                &aliases,
                "pci:v000010DEd00002330sv000010DEsd00001626bc03sc02i00"
            ),
            ["nouveau"]
        );
    }
}
