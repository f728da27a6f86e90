//! `lspci -t`, `-tv`, `-tvnn`: the bus tree as ls-tree.c `show_tree_bus()`
//! and `show_tree_dev()` draw it. Each root bus opens with `[dddd:bb]`;
//! each function is `dd.f`, a bridge's is followed by `-[ss-ee]` (or
//! `-[ss]`) and the functions on its secondary bus. Lines are drawn on a
//! grid: a function's children start further right than it, its siblings
//! in the same column, so a stack of (column, node) is all the state.

use crate::pci::Bdf;

/// One function as the tree shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    pub bdf: Bdf,
    /// The bridge above it, None on a root bus.
    pub parent: Option<Bdf>,
    /// The root bus it hangs below: (domain, bus).
    pub root: (u32, u8),
    /// A bridge's secondary and subordinate bus.
    pub range: Option<(u8, u8)>,
    /// `[vvvv:dddd]` with -nn.
    pub ids: Option<(u16, u16)>,
    /// The name with -v.
    pub name: Option<String>,
    pub line: usize,
}

#[derive(Debug, Clone, Copy)]
enum Frame {
    Root {
        col: usize,
        domain: u32,
        bus: u8,
    },
    Dev {
        col: usize,
        bdf: Bdf,
        secondary: Option<u8>,
    },
}

impl Frame {
    fn col(&self) -> usize {
        match self {
            Frame::Root { col, .. } | Frame::Dev { col, .. } => *col,
        }
    }
}

/// Collects tree lines; a tree ends at the first line that is not one.
#[derive(Debug, Default)]
pub struct TreeParser {
    stack: Vec<Frame>,
    pub nodes: Vec<TreeNode>,
    /// (line, what was wrong) for lines that could not be placed.
    pub problems: Vec<(usize, String)>,
}

/// Does this line open a tree (`-[0000:00]-`, `-+-[0000:00]-`)?
pub fn starts_tree(line: &str) -> bool {
    let t = line.trim_end();
    (t.starts_with("-[") || t.starts_with("-+-[") || t.starts_with("+-[") || t.starts_with("\\-["))
        && t.contains("]-")
}

impl TreeParser {
    pub fn in_tree(&self) -> bool {
        !self.stack.is_empty()
    }

    pub fn end(&mut self) {
        self.stack.clear();
    }

    /// Feeds a line; false when it is not part of a tree (the tree ends).
    pub fn feed(&mut self, line: &str, no: usize) -> bool {
        if !self.in_tree() && !starts_tree(line) {
            return false;
        }
        if self.in_tree() && !starts_tree(line) {
            // A continuation draws only `|`, blanks, `+-`, `\-` before its
            // first node.
            let lead = line.trim_start_matches([' ', '|']);
            if !(lead.starts_with("+-") || lead.starts_with("\\-")) {
                self.end();
                return false;
            }
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '[' => {
                    // `[dddd:bb]`: a root bus.
                    let Some(close) = chars[i..].iter().position(|&c| c == ']') else {
                        self.problems.push((no, "unclosed `[` in the tree".into()));
                        return true;
                    };
                    let inner: String = chars[i + 1..i + close].iter().collect();
                    let Some((d, b)) = inner.split_once(':').and_then(|(d, b)| {
                        Some((
                            u32::from_str_radix(d, 16).ok()?,
                            u8::from_str_radix(b, 16).ok()?,
                        ))
                    }) else {
                        self.problems
                            .push((no, format!("`[{inner}]` is not a root bus (dddd:bb)")));
                        return true;
                    };
                    self.pop_to(i);
                    self.stack.push(Frame::Root {
                        col: i,
                        domain: d,
                        bus: b,
                    });
                    i += close + 1;
                }
                c if c.is_ascii_hexdigit() => {
                    // `dd.f`
                    let tok: String = chars[i..].iter().take(4).collect();
                    let slot = (tok.len() == 4 && tok.as_bytes()[2] == b'.')
                        .then(|| {
                            let dev = u8::from_str_radix(&tok[..2], 16).ok()?;
                            let func = tok[3..].parse::<u8>().ok()?;
                            (dev <= 0x1f && func <= 7).then_some((dev, func))
                        })
                        .flatten();
                    let Some((dev, func)) = slot else {
                        self.problems
                            .push((no, format!("`{tok}` is not a device.function")));
                        return true;
                    };
                    let col = i;
                    i += 4;
                    // `-[ss-ee]` or `-[ss]`
                    let mut range = None;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1) == Some(&'[') {
                        let Some(close) = chars[i..].iter().position(|&c| c == ']') else {
                            self.problems.push((no, "unclosed bus range".into()));
                            return true;
                        };
                        let inner: String = chars[i + 2..i + close].iter().collect();
                        let (s, e) = inner.split_once('-').unwrap_or((&inner, &inner));
                        range = match (u8::from_str_radix(s, 16), u8::from_str_radix(e, 16)) {
                            (Ok(s), Ok(e)) => Some((s, e)),
                            _ => {
                                self.problems
                                    .push((no, format!("`[{inner}]` is not a bus range")));
                                None
                            }
                        };
                        i += close + 1;
                    }
                    self.pop_to(col);
                    let (parent, bus, root) = match self.place(col) {
                        Ok(p) => p,
                        Err(why) => {
                            self.problems.push((no, why));
                            return true;
                        }
                    };
                    let bdf = Bdf::new(root.0, bus, dev, func);
                    let mut node = TreeNode {
                        bdf,
                        parent,
                        root,
                        range,
                        ids: None,
                        name: None,
                        line: no,
                    };
                    self.stack.push(Frame::Dev {
                        col,
                        bdf,
                        secondary: range.map(|r| r.0),
                    });
                    // Two blanks: the name (-v), to the end of the line.
                    let rest: String = chars[i..].iter().collect();
                    if let Some(name) = rest.strip_prefix("  ") {
                        let name = name.trim();
                        if let Some((n, ids)) =
                            name.strip_suffix(']').and_then(|n| n.rsplit_once('['))
                            && let Some((v, d)) = ids.split_once(':')
                            && let (Ok(v), Ok(d)) =
                                (u16::from_str_radix(v, 16), u16::from_str_radix(d, 16))
                            && ids.len() == 9
                        {
                            node.ids = Some((v, d));
                            node.name = Some(n.trim_end().to_string());
                        } else {
                            node.name = Some(name.to_string());
                        }
                        self.nodes.push(node);
                        return true;
                    }
                    self.nodes.push(node);
                }
                _ => i += 1,
            }
        }
        true
    }

    /// Drops frames at or right of `col`: siblings and their subtrees.
    fn pop_to(&mut self, col: usize) {
        while self.stack.last().is_some_and(|f| f.col() >= col) {
            self.stack.pop();
        }
    }

    /// The parent, bus and root bus of a function drawn at this column.
    #[allow(clippy::type_complexity)]
    fn place(&self, col: usize) -> Result<(Option<Bdf>, u8, (u32, u8)), String> {
        let root = self
            .stack
            .iter()
            .rev()
            .find_map(|f| match f {
                Frame::Root { domain, bus, .. } => Some((*domain, *bus)),
                _ => None,
            })
            .ok_or_else(|| format!("a function at column {col} below no root bus"))?;
        match self.stack.last() {
            Some(Frame::Root { bus, .. }) => Ok((None, *bus, root)),
            Some(Frame::Dev {
                bdf,
                secondary: Some(s),
                ..
            }) => Ok((Some(*bdf), *s, root)),
            Some(Frame::Dev { bdf, .. }) => Err(format!(
                "a function drawn below {bdf}, which shows no bus range: impossible nesting, skipped"
            )),
            None => Err("a function outside any tree".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TreeParser {
        let mut p = TreeParser::default();
        for (i, l) in text.lines().enumerate() {
            p.feed(l, i + 1);
        }
        p
    }

    #[test]
    fn switch_below_root_port() {
        let p = parse(
            "-[0000:00]-+-00.0  Intel Corporation Sky Lake-E DMI3 Registers [8086:2020]
           +-02.0-[01-04]----00.0  Intel Corporation PCIe Data Center SSD [8086:0953]
           \\-03.0-[05-0a]----00.0-[06-0a]--+-08.0-[07]----00.0  Samsung NVMe [144d:a824]
                                           \\-10.0-[0a]----00.0  NVIDIA Corporation GA100 [A100 PCIe 80GB] [10de:20b5]",
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let find = |s: &str| {
            p.nodes
                .iter()
                .find(|n| n.bdf.to_string() == s)
                .unwrap()
                .clone()
        };
        assert_eq!(find("0000:00:00.0").ids, Some((0x8086, 0x2020)));
        assert_eq!(
            find("0000:01:00.0").parent.unwrap().to_string(),
            "0000:00:02.0"
        );
        assert_eq!(
            find("0000:06:08.0").parent.unwrap().to_string(),
            "0000:05:00.0"
        );
        assert_eq!(
            find("0000:0a:00.0").parent.unwrap().to_string(),
            "0000:06:10.0"
        );
        assert_eq!(
            find("0000:0a:00.0").name.as_deref(),
            Some("NVIDIA Corporation GA100 [A100 PCIe 80GB]")
        );
        assert_eq!(find("0000:05:00.0").range, Some((6, 0x0a)));
        assert_eq!(p.nodes.len(), 9);
    }

    #[test]
    fn several_root_buses_and_domains() {
        let p = parse(
            "-+-[0000:00]---00.0
 +-[0000:64]-+-00.0
 |           \\-00.5
 \\-[10000:e0]-+-02.0-[e1]----00.0
              \\-03.0-[e2]----00.0",
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let b: Vec<String> = p.nodes.iter().map(|n| n.bdf.to_string()).collect();
        assert_eq!(
            b,
            [
                "0000:00:00.0",
                "0000:64:00.0",
                "0000:64:00.5",
                "10000:e0:02.0",
                "10000:e1:00.0",
                "10000:e0:03.0",
                "10000:e2:00.0"
            ]
        );
        assert_eq!(p.nodes[4].root, (0x10000, 0xe0));
    }

    #[test]
    fn impossible_nesting_is_noted() {
        let p = parse("-[0000:00]-+-00.0----01.0\n");
        assert_eq!(p.nodes.len(), 1);
        assert_eq!(p.problems.len(), 1);
    }
}
