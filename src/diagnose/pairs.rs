//! The pairs of a diagnosis, stored so that a server with thousands of
//! functions (millions of pairs) fits in memory.
//!
//! Pairs whose ends sit alike on the same path get the same answer from the
//! kernel: the same map type, distance, ACS-redirect bridges, host bridges
//! and whitelist outcome, the same path class and the same narrowest link.
//! That answer is computed once and kept once, as a [`PairPath`]; a pair is
//! a row of three numbers (provider, client, path). The lines the kernel
//! logs name the pair, so a path keeps them with the names left as places to
//! fill ([`KernelLine`]), and [`Pair::kernel_messages`] fills them in.
//!
//! Two ends "sit alike" when everything `calc_map_type_and_dist()` and the
//! path class read of them, apart from their names, is the same: the
//! bridge above, the host bridge, the NUMA node, the role and their own
//! link, with no ACS redirect, nothing unknown and a known place of their
//! own (an end with any of those is a path of its own, because the verdict
//! names it). A pair of a function with itself is always a path of its
//! own.

use std::collections::HashMap;

use serde::Serialize;

use crate::diagnose::KernelModel;
use crate::diagnose::LinkBound;
use crate::diagnose::p2pdma::{P2pView, Verdict, printk_name};
use crate::diagnose::settle::PairConfirm;
use crate::pci::Bdf;
use crate::topology::{NodeId, PathClass, Role, Tree};

/// Index into [`PairTable::paths`].
pub type PathId = u32;

/// Where a path's narrowest link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    /// The provider's own link.
    Provider,
    /// The client's own link.
    Client,
    /// A bridge's link on the way.
    Device(Bdf),
}

impl Serialize for LinkEnd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LinkEnd::Provider => s.serialize_str("provider"),
            LinkEnd::Client => s.serialize_str("client"),
            LinkEnd::Device(b) => s.collect_str(b),
        }
    }
}

/// The narrowest link of a path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathBottleneck {
    /// `provider`, `client`, or the address of the bridge whose Link Status
    /// describes the link.
    pub at: LinkEnd,
    /// `Gen3 x4`
    pub link: String,
    /// Usable bandwidth in one direction, GB/s.
    pub gbytes_per_s: f64,
}

/// What every pair on one path shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairPath {
    /// The kernel's decision.
    pub verdict: Verdict,
    /// NVML's class for the wiring (PIX, PXB, PHB, NODE, SYS).
    pub path_class: PathClass,
    /// The class of where the TLPs really go: PHB when the kernel's
    /// decision sends the traffic through the root complex.
    pub effective_path_class: PathClass,
    /// PCIe switches crossed.
    pub switches: usize,
    /// The narrowest link crossed whose state was read.
    pub bottleneck: Option<PathBottleneck>,
    /// The most the path can carry, one direction, GB/s: the narrowest
    /// link by trained speed x width less the encoding overhead. None
    /// where a link on the path could not be read.
    pub bandwidth_bound: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    provider: u32,
    client: u32,
    path: PathId,
}

/// A pair's end: its address and the name the kernel's lines give it.
#[derive(Debug, Clone, PartialEq)]
struct End {
    bdf: Bdf,
    printk: String,
    /// Ends of one class sit alike: every pair of theirs shares its path
    /// with the same pair of any other member.
    class: u32,
}

/// Every pair of a diagnosis, with the paths they share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PairTable {
    rows: Vec<Row>,
    paths: Vec<PairPath>,
    /// By node: the ends that appear in a row.
    ends: Vec<Option<End>>,
    /// By path: the pair it was computed for.
    representative: Vec<(u32, u32)>,
    /// Transfer results, by row (`check --confirm`: a few pairs).
    confirm: HashMap<u32, PairConfirm>,
}

impl PairTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The paths, each once; [`Pair::path_id`] indexes them.
    pub fn paths(&self) -> &[PairPath] {
        &self.paths
    }

    pub fn get(&self, index: usize) -> Option<Pair<'_>> {
        (index < self.rows.len()).then_some(Pair {
            table: self,
            index: index as u32,
        })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Pair<'_>> + DoubleEndedIterator + Clone {
        (0..self.rows.len() as u32).map(move |index| Pair { table: self, index })
    }

    /// The functions that are an end of some pair, in node order.
    pub fn ends(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.ends
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|_| NodeId::new(i)))
    }

    /// The address of every function that is an end of some pair, in node
    /// order.
    pub fn end_bdfs(&self) -> impl Iterator<Item = Bdf> + '_ {
        self.ends.iter().flatten().map(|e| e.bdf)
    }

    /// Every end with its class: ends of one class sit alike, so a pair's
    /// path is the same with any member in an end's place (the matrix
    /// groups them).
    pub fn classes(&self) -> impl Iterator<Item = (Bdf, u32)> + '_ {
        self.ends.iter().flatten().map(|e| (e.bdf, e.class))
    }

    /// One (provider, client) pair of nodes for each path.
    pub fn representatives(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.representative
            .iter()
            .map(|&(a, b)| (NodeId::new(a as usize), NodeId::new(b as usize)))
    }

    /// Records what a transfer between the pair's ends showed
    /// ([`Diagnosis::settle`](super::Diagnosis::settle) does, for the
    /// confirm stage's results).
    pub(super) fn set_confirm(&mut self, index: usize, result: PairConfirm) {
        assert!(index < self.rows.len(), "no pair {index}");
        self.confirm.insert(index as u32, result);
    }

    /// Keeps the pairs `keep` says yes to, and the paths and ends they use.
    pub fn retain(&mut self, mut keep: impl FnMut(Pair<'_>) -> bool) {
        let verdicts: Vec<bool> = self.iter().map(&mut keep).collect();
        let mut confirm = HashMap::new();
        let mut rows = Vec::with_capacity(verdicts.iter().filter(|&&k| k).count());
        for (i, row) in self.rows.iter().enumerate() {
            if verdicts[i] {
                if let Some(c) = self.confirm.remove(&(i as u32)) {
                    confirm.insert(rows.len() as u32, c);
                }
                rows.push(*row);
            }
        }
        self.rows = rows;
        self.confirm = confirm;
        // Paths no row uses any more go, and the rest are numbered again
        // in their order: a document never lists a decision no pair has.
        let mut used = vec![false; self.paths.len()];
        for r in &self.rows {
            used[r.path as usize] = true;
        }
        let mut renumber = vec![PathId::MAX; self.paths.len()];
        let mut next = 0;
        for (i, u) in used.iter().enumerate() {
            if *u {
                renumber[i] = next;
                next += 1;
            }
        }
        let mut i = 0;
        self.paths.retain(|_| {
            i += 1;
            used[i - 1]
        });
        let mut i = 0;
        self.representative.retain(|_| {
            i += 1;
            used[i - 1]
        });
        for r in &mut self.rows {
            r.path = renumber[r.path as usize];
        }
        // Ends no row names any more go too.
        let mut named = vec![false; self.ends.len()];
        for r in &self.rows {
            named[r.provider as usize] = true;
            named[r.client as usize] = true;
        }
        for (e, n) in self.ends.iter_mut().zip(named) {
            if !n {
                *e = None;
            }
        }
    }
}

impl<'a> IntoIterator for &'a PairTable {
    type Item = Pair<'a>;
    type IntoIter = Box<dyn Iterator<Item = Pair<'a>> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One pair: a view of a row of a [`PairTable`].
#[derive(Clone, Copy)]
pub struct Pair<'a> {
    table: &'a PairTable,
    index: u32,
}

impl std::fmt::Debug for Pair<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} (path {})",
            self.provider(),
            self.client(),
            self.path_id()
        )
    }
}

impl PartialEq for Pair<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.table, other.table) && self.index == other.index
    }
}

impl<'a> Pair<'a> {
    fn row(&self) -> Row {
        self.table.rows[self.index as usize]
    }

    fn end(&self, id: u32) -> &'a End {
        self.table.ends[id as usize]
            .as_ref()
            .expect("every end of a row is recorded")
    }

    /// The pair's place in the table.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    pub fn provider(&self) -> Bdf {
        self.end(self.row().provider).bdf
    }

    pub fn client(&self) -> Bdf {
        self.end(self.row().client).bdf
    }

    pub fn provider_id(&self) -> NodeId {
        NodeId::new(self.row().provider as usize)
    }

    pub fn client_id(&self) -> NodeId {
        NodeId::new(self.row().client as usize)
    }

    pub fn path_id(&self) -> PathId {
        self.row().path
    }

    /// What the pair shares with every pair on its path.
    pub fn path(&self) -> &'a PairPath {
        &self.table.paths[self.row().path as usize]
    }

    /// The kernel's decision.
    pub fn verdict(&self) -> &'a Verdict {
        &self.path().verdict
    }

    pub fn path_class(&self) -> PathClass {
        self.path().path_class
    }

    pub fn effective_path_class(&self) -> PathClass {
        self.path().effective_path_class
    }

    pub fn switches(&self) -> usize {
        self.path().switches
    }

    pub fn bandwidth_bound(&self) -> Option<f64> {
        self.path().bandwidth_bound
    }

    /// The narrowest link crossed, naming the device whose link it is.
    pub fn bottleneck(&self) -> Option<LinkBound> {
        let b = self.path().bottleneck.as_ref()?;
        Some(LinkBound {
            bdf: match b.at {
                LinkEnd::Provider => self.provider(),
                LinkEnd::Client => self.client(),
                LinkEnd::Device(bdf) => bdf,
            },
            link: b.link.clone(),
            gbytes_per_s: b.gbytes_per_s,
        })
    }

    /// What a transfer between the two showed (`check --confirm`).
    pub fn confirm(&self) -> Option<&'a PairConfirm> {
        self.table.confirm.get(&self.index)
    }

    /// The lines the kernel logs on the first mapping, as it prints them.
    pub fn kernel_messages(&self) -> Vec<String> {
        let (p, c) = (self.end(self.row().provider), self.end(self.row().client));
        self.verdict()
            .kernel_lines
            .iter()
            .map(|l| l.render(p.bdf, &c.printk))
            .collect()
    }

    /// The functions from the provider up to where the two meet and down
    /// to the client.
    pub fn route(&self, tree: &Tree) -> Vec<NodeId> {
        route(tree, self.provider_id(), self.client_id())
    }
}

/// The functions from `a` up to where `a` and `b` meet and down to `b`.
pub(crate) fn route(tree: &Tree, a: NodeId, b: NodeId) -> Vec<NodeId> {
    let path = tree.path(a, b);
    let mut route = vec![a];
    route.extend(path.up_from_a.iter().copied());
    route.extend(path.common);
    route.extend(path.up_from_b.iter().rev().copied());
    route.push(b);
    route
}

/// What the verdict and the path class read of one end, its name aside.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EndSignature {
    /// The end itself where the verdict names it (ACS redirect or
    /// unknown ACS on it, or its place unknown).
    named: Option<NodeId>,
    parent: Option<NodeId>,
    upstream: Option<NodeId>,
    host_bridge: usize,
    view_host_bridge: usize,
    /// Functions on a root bus: their device (two functions of one device
    /// are PIX, of two devices PHB).
    root_slot: Option<(u32, u8, u8)>,
    numa_node: Option<i32>,
    role: Role,
    /// Its own link as read (trained and capable speed and width): the
    /// narrowest link of a path may be an end's.
    link: String,
}

/// Builds a [`PairTable`], computing each path once.
pub(crate) struct Builder<'a> {
    tree: &'a Tree,
    view: &'a P2pView,
    kernel: &'a KernelModel,
    classes: HashMap<EndSignature, u32>,
    /// By node: its class, once seen.
    class_of: Vec<Option<u32>>,
    shared: HashMap<(u32, u32), PathId>,
    own: HashMap<NodeId, PathId>,
    table: PairTable,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(tree: &'a Tree, view: &'a P2pView, kernel: &'a KernelModel) -> Self {
        Builder {
            tree,
            view,
            kernel,
            classes: HashMap::new(),
            class_of: vec![None; tree.nodes.len()],
            shared: HashMap::new(),
            own: HashMap::new(),
            table: PairTable {
                ends: vec![None; tree.nodes.len()],
                ..PairTable::default()
            },
        }
    }

    pub(crate) fn reserve(&mut self, rows: usize) {
        self.table.rows.reserve_exact(rows);
    }

    fn class(&mut self, id: NodeId) -> u32 {
        if let Some(c) = self.class_of[id] {
            return c;
        }
        let n = self.tree.node(id);
        let f = &self.view.functions[id];
        let named = (f.acs.redirects() != Some(false) || !f.placed).then_some(id);
        let bdf = n.bdf();
        let sig = EndSignature {
            named,
            parent: n.parent,
            upstream: f.upstream,
            host_bridge: n.host_bridge,
            view_host_bridge: f.host_bridge,
            root_slot: n
                .parent
                .is_none()
                .then_some((bdf.domain, bdf.bus, bdf.device)),
            numa_node: n.facts.numa_node,
            role: n.role,
            link: format!("{:?}", n.link),
        };
        let next = self.classes.len() as u32;
        let c = *self.classes.entry(sig).or_insert(next);
        self.class_of[id] = Some(c);
        self.table.ends[id] = Some(End {
            bdf,
            printk: printk_name(f.driver.as_deref(), bdf),
            class: c,
        });
        c
    }

    /// Adds the pair (provider, client).
    pub(crate) fn push(&mut self, provider: NodeId, client: NodeId) {
        let (cp, cc) = (self.class(provider), self.class(client));
        let path = if provider == client {
            match self.own.get(&provider) {
                Some(&id) => id,
                None => {
                    let id = self.compute(provider, client);
                    self.own.insert(provider, id);
                    id
                }
            }
        } else {
            match self.shared.get(&(cp, cc)) {
                Some(&id) => id,
                None => {
                    let id = self.compute(provider, client);
                    self.shared.insert((cp, cc), id);
                    id
                }
            }
        };
        self.table.rows.push(Row {
            provider: provider.index() as u32,
            client: client.index() as u32,
            path,
        });
    }

    fn compute(&mut self, provider: NodeId, client: NodeId) -> PathId {
        let tree = self.tree;
        let verdict = self.view.path_verdict(self.kernel, provider, client);
        let path = tree.path(provider, client);
        let (narrowest, all_known) = super::checks::path_links(tree, provider, client);
        let (provider_bdf, client_bdf) = (tree.node(provider).bdf(), tree.node(client).bdf());
        let bandwidth_bound = all_known
            .then(|| narrowest.as_ref().map(|b| b.gbytes_per_s))
            .flatten();
        let bottleneck = narrowest.map(|l| PathBottleneck {
            at: if l.bdf == provider_bdf {
                LinkEnd::Provider
            } else if l.bdf == client_bdf {
                LinkEnd::Client
            } else {
                LinkEnd::Device(l.bdf)
            },
            link: l.link,
            gbytes_per_s: l.gbytes_per_s,
        });
        self.table
            .representative
            .push((provider.index() as u32, client.index() as u32));
        self.table.paths.push(PairPath {
            effective_path_class: path.class.effective(verdict.needs_host_bridge()),
            verdict,
            path_class: path.class,
            switches: path.switches.len(),
            bottleneck,
            bandwidth_bound,
        });
        (self.table.paths.len() - 1) as PathId
    }

    pub(crate) fn finish(self) -> PairTable {
        self.table
    }
}
