//! Resolving a root-relative path to a canonical one, symlinks followed
//! one component at a time against the root (never the host): an absolute
//! target is re-rooted and `..` stops at the root. In an in-memory tree the
//! last deep path resolved is kept as a cursor, so the next one (usually
//! that path plus a component) takes the shared part in one comparison.

use std::fs;
use std::io;

use super::memtree::{MemTree, common_prefix};
use super::{Backing, Entry, Kind, SystemRoot};

/// Symlinks followed while resolving one path before we call it a loop
/// (the kernel's MAXSYMLINKS is 40).
pub(super) const MAX_SYMLINKS: usize = 40;

thread_local! {
    /// The last deep path this thread resolved in memory, and the root's
    /// id (see `cursor_skip`). Per thread: a scan's threads each take a
    /// batch of neighbouring devices.
    static CURSOR: std::cell::RefCell<Option<(u64, Cursor)>> = const { std::cell::RefCell::new(None) };
}

/// A canonical path resolved in an in-memory tree, with where each
/// component starts and its node: the devices of a deep tree are resolved
/// one after another, each path the one before plus a component, so the
/// next resolution takes the shared part from here.
#[derive(Debug)]
struct Cursor {
    here: String,
    ends: Vec<usize>,
    nodes: Vec<u32>,
}

/// Paths at least this deep are kept as the cursor.
const CURSOR_DEPTH: usize = 16;

/// What `cursor_skip` took: the state after the shared components, and the
/// bytes of the text they span.
struct Skip {
    here: String,
    ends: Vec<usize>,
    nodes: Vec<u32>,
    used: usize,
}

/// How many components of the cursor `cur` the walk from `here` (with
/// `depth` components) through `rest` shares: (components, their end in
/// the cursor's path, bytes of `rest` they span); None if not beyond
/// `here`. Only whole components that are directories are taken.
fn cursor_match(
    cur: &Cursor,
    tree: &MemTree,
    here: &str,
    depth: usize,
    rest: &str,
) -> Option<(usize, usize, usize)> {
    if cur.ends.len() <= depth + 1 {
        return None;
    }
    // `here` must be the cursor's first `depth` components.
    let here_end = cur.ends[depth];
    if here_end != here.len() || cur.here.as_bytes()[..here_end] != *here.as_bytes() {
        return None;
    }
    // Compare the rest with the cursor beyond `here` at memcmp speed, then
    // back off to a component boundary in both.
    let sep = usize::from(depth > 0);
    let theirs = cur.here.get(here_end + sep..)?.as_bytes();
    let ours = rest.as_bytes();
    let mut same = common_prefix(theirs, ours);
    let boundary =
        |n: usize| (n == ours.len() || ours[n] == b'/') && (n == theirs.len() || theirs[n] == b'/');
    while same > 0 && !boundary(same) {
        same -= 1;
    }
    if same == 0 {
        return None;
    }
    // What is taken equals the cursor's canonical path: no `.`, `..` or
    // empty components in it. The components covered are those that start
    // before its end; each must be a directory (the next is looked up
    // below it), so the last is left to the walk unless it is one.
    let end_abs = here_end + sep + same;
    let mut m = cur.ends.partition_point(|&e| e < end_abs);
    while m > depth && tree.kind(cur.nodes[m - 1]) != Kind::Dir {
        m -= 1;
    }
    if m <= depth {
        return None;
    }
    let new_end = cur.ends.get(m).copied().unwrap_or(cur.here.len());
    Some((m, new_end, new_end - (here_end + sep)))
}

impl SystemRoot {
    /// Looks at one canonical path without following it.
    pub(super) fn kind(&self, canonical: &str) -> io::Result<Option<Kind>> {
        if let Backing::Memory { tree, .. } = &self.backing {
            return Ok(tree.lookup(canonical).map(|id| tree.kind(id)));
        }
        if let Ok(cache) = self.kinds.read()
            && let Some(k) = cache.get(canonical)
        {
            return Ok(k.clone());
        }
        let kind = match &self.backing {
            Backing::Dir { base, .. } => match fs::symlink_metadata(base.join(canonical)) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(base.join(canonical))?;
                    Some(Kind::Symlink(target.to_string_lossy().into_owned()))
                }
                Ok(m) if m.is_dir() => Some(Kind::Dir),
                Ok(_) => Some(Kind::File),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => None,
                Err(e) => return Err(e),
            },
            Backing::Memory { tree, .. } => tree.lookup(canonical).map(|id| tree.kind(id)),
        };
        // Only directories and links are worth remembering: they are the
        // shared prefixes of many paths. Files are looked at once.
        if matches!(kind, Some(Kind::Dir | Kind::Symlink(_)))
            && let Ok(mut cache) = self.kinds.write()
        {
            cache.insert(canonical.to_string(), kind.clone());
        }
        Ok(kind)
    }

    /// Resolves `path` to a canonical root-relative path with no symlinks.
    /// With `follow_last` false, a final symlink is left as it is.
    pub fn resolve(&self, path: &str, follow_last: bool) -> io::Result<String> {
        self.resolve_in(path, follow_last).map(|(here, _)| here)
    }

    /// [`resolve`](Self::resolve), and in an in-memory tree the node it
    /// leads to (None for a last component not followed).
    pub(super) fn resolve_in(
        &self,
        path: &str,
        follow_last: bool,
    ) -> io::Result<(String, Option<u32>)> {
        let tree = match &self.backing {
            Backing::Memory { tree, .. } => Some(tree),
            Backing::Dir { .. } => None,
        };
        // `here` is the canonical path so far; `ends` remembers where each
        // component started, so `..` and a replaced symlink pop cheaply;
        // `nodes` (in memory) the node of each component, beside `ends`.
        let mut here = String::with_capacity(path.len() + 64);
        let mut ends: Vec<usize> = Vec::new();
        let mut nodes: Vec<u32> = Vec::new();
        // Texts still to walk, the next on top, each as (text, offset of
        // what is left): text 0 is `path`, text i the (i-1)th symlink
        // target followed. Components are taken from a text as they come,
        // so a long target the cursor lets us skip is never split whole.
        let mut targets: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        let mut todo: Vec<(usize, usize)> = vec![(0, 0)];
        // The texts the cursor was tried on (once each).
        let mut tried: Vec<bool> = vec![false];
        let pop = |here: &mut String, ends: &mut Vec<usize>, nodes: &mut Vec<u32>| {
            if let Some(start) = ends.pop() {
                here.truncate(start);
                nodes.truncate(ends.len());
            }
        };
        while let Some(&(t, pos)) = todo.last() {
            let text: &str = match t {
                0 => path,
                i => &targets[i - 1],
            };
            let rest = text[pos..].trim_start_matches('/');
            if rest.is_empty() {
                todo.pop();
                continue;
            }
            let start = text.len() - rest.len();
            // In memory, a long plain run of components (a link into a deep
            // tree) is matched against the last deep path resolved, so that
            // the shared part costs a comparison, not a step per component.
            if let Some(tree) = tree
                && !tried[t]
                && self.recorder.is_none()
                && !rest.starts_with("./")
                && !rest.starts_with("../")
                && !matches!(rest, "." | "..")
            {
                tried[t] = true;
                if let Some(skip) = self.cursor_skip(tree, &here, ends.len(), rest) {
                    here = skip.here;
                    ends = skip.ends;
                    nodes = skip.nodes;
                    todo.last_mut().expect("on the stack").1 = start + skip.used;
                    continue;
                }
            }
            let len = rest.find('/').unwrap_or(rest.len());
            let component_range = start..start + len;
            todo.last_mut().expect("on the stack").1 = start + len;
            // Is anything left after this component, in any text?
            let last = {
                let left = |(t, pos): (usize, usize)| {
                    let s: &str = match t {
                        0 => path,
                        i => &targets[i - 1],
                    };
                    s[pos..].bytes().any(|b| b != b'/')
                };
                !todo.iter().rev().any(|&e| left(e))
            };
            let component = match t {
                0 => &path[component_range],
                i => &targets[i - 1][component_range],
            };
            match component {
                "." => continue,
                ".." => {
                    pop(&mut here, &mut ends, &mut nodes);
                    continue;
                }
                _ => {}
            }
            ends.push(here.len());
            if !here.is_empty() {
                here.push('/');
            }
            here.push_str(component);
            if last && !follow_last {
                break;
            }
            // In memory, a link's target is borrowed from the tree (it may
            // be tens of KiB long in a hostile one), not copied.
            let mut borrowed: Option<&str> = None;
            let kind = match tree {
                // One step from the parent's node, not a lookup of `here`.
                Some(tree) => {
                    let parent = nodes.last().copied().unwrap_or(MemTree::ROOT);
                    tree.child(parent, component).map(|id| {
                        nodes.push(id);
                        match &tree.node(id).entry {
                            Entry::Dir => Kind::Dir,
                            Entry::File(_) => Kind::File,
                            Entry::Symlink(t) => {
                                borrowed = Some(t.as_str());
                                Kind::Symlink(String::new())
                            }
                        }
                    })
                }
                None => self.kind(&here)?,
            };
            match kind {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{here}: no such file or directory"),
                    ));
                }
                Some(Kind::Symlink(target)) => {
                    if targets.len() >= MAX_SYMLINKS {
                        return Err(io::Error::other(format!("{path}: too many symbolic links")));
                    }
                    let target: std::borrow::Cow<'_, str> = match borrowed {
                        Some(t) => t.into(),
                        None => target.into(),
                    };
                    if self.recorder.is_some() {
                        self.note(&here, Entry::Symlink(target.to_string()));
                    }
                    pop(&mut here, &mut ends, &mut nodes);
                    if target.starts_with('/') {
                        here.clear();
                        ends.clear();
                        nodes.clear();
                    }
                    targets.push(target);
                    tried.push(false);
                    todo.push((targets.len(), 0));
                }
                Some(Kind::File) if !last => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{here}: not a directory"),
                    ));
                }
                Some(Kind::Dir) if last && self.recorder.is_some() => {
                    // A directory reached but perhaps never read from: keep
                    // it, so the path still resolves in a snapshot.
                    self.note(&here, Entry::Dir);
                }
                Some(_) => {}
            }
        }
        let node = tree.and_then(|_| {
            if ends.is_empty() {
                Some(MemTree::ROOT)
            } else {
                (nodes.len() == ends.len())
                    .then(|| nodes.last().copied())
                    .flatten()
            }
        });
        if tree.is_some() && node.is_some() && ends.len() >= CURSOR_DEPTH && self.recorder.is_none()
        {
            let cursor = Cursor {
                here: here.clone(),
                ends,
                nodes,
            };
            CURSOR.with_borrow_mut(|c| *c = Some((self.id, cursor)));
        }
        Ok((here, node))
    }

    /// How much of `rest` (components still to walk from `here`, which
    /// has `depth` of them) the last deep path resolved already walked:
    /// the state after those components, and the bytes of `rest` used.
    /// Only plain components (no `.`, `..`) are taken, each one a
    /// directory there (so never a symlink: the cursor's path is
    /// canonical).
    fn cursor_skip(&self, tree: &MemTree, here: &str, depth: usize, rest: &str) -> Option<Skip> {
        let (id, mut cur) = CURSOR.with_borrow_mut(|c| c.take())?;
        let found = (id == self.id)
            .then(|| cursor_match(&cur, tree, here, depth, rest))
            .flatten();
        let Some((m, new_end, used)) = found else {
            // Not this time: leave it for the next resolution.
            CURSOR.with_borrow_mut(|c| *c = Some((id, cur)));
            return None;
        };
        // Taken, not copied: the resolution puts its result back.
        cur.here.truncate(new_end);
        cur.ends.truncate(m);
        cur.nodes.truncate(m);
        Some(Skip {
            here: cur.here,
            ends: cur.ends,
            nodes: cur.nodes,
            used,
        })
    }
}
