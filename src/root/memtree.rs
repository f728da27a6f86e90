//! The in-memory tree a snapshot archive (or a test's entries) is loaded
//! into: nodes linked by name, so a lookup is a step per component.

use std::collections::{BTreeMap, HashMap};

use super::{Entry, Kind, split};

/// An in-memory tree, as nodes linked by name, so that a lookup costs a
/// step per component however long the path: a hostile snapshot nests
/// thousands of bridges, and keying by whole paths made every step hash
/// (or compare) the whole path so far, cubic in the depth.
#[derive(Debug)]
pub(super) struct MemTree {
    nodes: Vec<MemNode>,
}

#[derive(Debug)]
pub(super) struct MemNode {
    pub(super) entry: Entry,
    /// Children by name, in the order they came; searched in turn while
    /// few (a sysfs directory along a chain of bridges has a handful).
    children: Vec<(Box<str>, u32)>,
    /// The same, hashed, once there are more than [`SCAN_CHILDREN`].
    index: Option<HashMap<Box<str>, u32>>,
}

const SCAN_CHILDREN: usize = 16;

impl MemTree {
    pub(super) const ROOT: u32 = 0;

    /// Builds the tree. Paths come sorted, so each shares its leading
    /// components with the one before: only the rest is looked up. Parent
    /// directories need not be listed (archives often omit them).
    pub(super) fn new(entries: BTreeMap<String, Entry>) -> MemTree {
        let mut tree = MemTree {
            nodes: vec![MemNode::new(Entry::Dir)],
        };
        // The previous path, its components' byte ranges and their nodes.
        let mut prev = String::new();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        let mut stack: Vec<u32> = Vec::new();
        for (key, entry) in entries {
            // The components wholly inside the bytes shared with the
            // previous path are its components too: keep their nodes.
            let kb = key.as_bytes();
            let lcp = common_prefix(prev.as_bytes(), kb);
            let mut keep = ranges.partition_point(|&(_, end)| end < lcp);
            if keep < ranges.len() && ranges[keep].1 == lcp && (lcp == kb.len() || kb[lcp] == b'/')
            {
                keep += 1;
            }
            ranges.truncate(keep);
            stack.truncate(keep);
            let mut at = ranges.last().map_or(0, |r| r.1);
            for part in key[at..].split('/') {
                if !part.is_empty() {
                    let parent = stack.last().copied().unwrap_or(Self::ROOT);
                    stack.push(tree.child_or_insert(parent, part));
                    ranges.push((at, at + part.len()));
                }
                at += part.len() + 1;
            }
            if let Some(&id) = stack.last() {
                tree.nodes[id as usize].entry = entry;
            }
            prev = key;
        }
        tree
    }

    pub(super) fn node(&self, id: u32) -> &MemNode {
        &self.nodes[id as usize]
    }

    pub(super) fn child(&self, id: u32, name: &str) -> Option<u32> {
        let n = self.node(id);
        match &n.index {
            Some(index) => index.get(name).copied(),
            None => n
                .children
                .iter()
                .find(|(c, _)| &**c == name)
                .map(|&(_, id)| id),
        }
    }

    fn child_or_insert(&mut self, id: u32, name: &str) -> u32 {
        if let Some(c) = self.child(id, name) {
            return c;
        }
        let new = self.nodes.len() as u32;
        self.nodes.push(MemNode::new(Entry::Dir));
        let n = &mut self.nodes[id as usize];
        n.children.push((name.into(), new));
        match &mut n.index {
            Some(index) => {
                index.insert(name.into(), new);
            }
            None if n.children.len() > SCAN_CHILDREN => {
                n.index = Some(n.children.iter().cloned().collect());
            }
            None => {}
        }
        new
    }

    /// The node at a canonical path (no symlink followed).
    pub(super) fn lookup(&self, canonical: &str) -> Option<u32> {
        split(canonical).try_fold(Self::ROOT, |id, c| self.child(id, c))
    }

    pub(super) fn kind(&self, id: u32) -> Kind {
        match &self.node(id).entry {
            Entry::Dir => Kind::Dir,
            Entry::File(_) => Kind::File,
            Entry::Symlink(t) => Kind::Symlink(t.clone()),
        }
    }

    pub(super) fn names(&self, id: u32) -> Vec<String> {
        self.node(id)
            .children
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }
}

impl MemNode {
    fn new(entry: Entry) -> MemNode {
        MemNode {
            entry,
            children: Vec::new(),
            index: None,
        }
    }
}

/// The length of the common prefix of two byte strings, a block at a time.
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}
