//! Placing the PCI tree on a page: a tidy tree whose wide levels wrap.
//!
//! The tree is NUMA nodes → host bridges → functions. Each subtree is laid
//! out as a block: its children's blocks side by side below it, the parent
//! centred over them (the classic tidy tree: no two subtrees overlap,
//! parents sit over their children). Where the children would make a
//! block wider than the page's limit they wrap into stacked rows, joined
//! to the parent by a trunk down the left side, the way an org chart
//! stacks a long department. The limit is chosen so that the whole
//! picture stays readable (not wider than [`MAX_ASPECT`] times its
//! height): a 2-socket server with 8 GPUs and 8 NICs becomes two rows of
//! sockets, not a 4000×357 strip.
//!
//! Pure: positions in pixels, no drawing.

use crate::topology::{NodeId, Tree};

/// A device box.
pub const BOX_W: f64 = 200.0;
pub const BOX_H: f64 = 50.0;
/// Between siblings.
const H_GAP: f64 = 14.0;
/// Between a parent and its first row of children.
const V_GAP: f64 = 34.0;
/// Between stacked rows of children.
const ROW_GAP: f64 = 30.0;
/// The left indent of stacked rows (the trunk runs in it).
const INDENT: f64 = 26.0;
/// Inside a cluster frame (NUMA node, host bridge) and its label.
const PAD: f64 = 10.0;
const LABEL_H: f64 = 18.0;

/// The widest picture relative to its height that the layout aims for.
pub const MAX_ASPECT: f64 = 2.5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn bottom_centre(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h)
    }

    fn shifted(self, dx: f64, dy: f64) -> Rect {
        Rect {
            x: self.x + dx,
            y: self.y + dy,
            ..self
        }
    }

    /// The smallest rectangle holding both.
    pub fn union(self, o: Rect) -> Rect {
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        Rect {
            x,
            y,
            w: (self.x + self.w).max(o.x + o.w) - x,
            h: (self.y + self.h).max(o.y + o.h) - y,
        }
    }
}

/// What a cluster frame stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A NUMA node (None: the host bridges whose node is not known).
    Numa(Option<i32>),
    /// Index into [`Tree::host_bridges`].
    HostBridge(usize),
}

/// The placed picture. Coordinates start at (0, 0).
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// Per node, its box.
    pub nodes: Vec<Option<Rect>>,
    /// Per host bridge, its box (the root complex).
    pub host_bridges: Vec<Option<Rect>>,
    /// Clusters, outermost first.
    pub frames: Vec<(Frame, Rect)>,
    /// Tree links as polylines, parent to child; the child it leads to.
    pub links: Vec<(Link, Vec<(f64, f64)>)>,
}

/// The end of a tree link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// The host bridge to a function on its root bus.
    Root(NodeId),
    /// A bridge to a function below it.
    Child(NodeId),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Top,
    Numa(Option<i32>),
    HostBridge(usize),
    Node(NodeId),
}

/// A laid-out subtree, relative to its own top left.
#[derive(Default)]
struct Block {
    w: f64,
    h: f64,
    boxes: Vec<(Item, Rect)>,
    frames: Vec<(Frame, Rect)>,
    links: Vec<(Link, Vec<(f64, f64)>)>,
}

impl Block {
    fn absorb(&mut self, child: Block, dx: f64, dy: f64) {
        self.boxes
            .extend(child.boxes.into_iter().map(|(i, r)| (i, r.shifted(dx, dy))));
        self.frames.extend(
            child
                .frames
                .into_iter()
                .map(|(f, r)| (f, r.shifted(dx, dy))),
        );
        self.links.extend(
            child
                .links
                .into_iter()
                .map(|(l, pts)| (l, pts.into_iter().map(|(x, y)| (x + dx, y + dy)).collect())),
        );
    }
}

struct Ctx<'a> {
    tree: &'a Tree,
    /// Per host bridge, the functions on its root bus.
    roots: Vec<Vec<NodeId>>,
    numa: Vec<Option<i32>>,
    max_w: f64,
}

impl Ctx<'_> {
    fn children(&self, item: Item) -> Vec<Item> {
        match item {
            Item::Top => self.numa.iter().map(|&n| Item::Numa(n)).collect(),
            Item::Numa(n) => (0..self.tree.host_bridges.len())
                .filter(|&h| self.tree.host_bridges[h].numa_node == n)
                .map(Item::HostBridge)
                .collect(),
            Item::HostBridge(h) => self.roots[h].iter().map(|&n| Item::Node(n)).collect(),
            Item::Node(n) => self
                .tree
                .node(n)
                .children
                .iter()
                .map(|&c| Item::Node(c))
                .collect(),
        }
    }

    fn link_to(item: Item, parent: Item) -> Option<Link> {
        match (parent, item) {
            (Item::HostBridge(_), Item::Node(n)) => Some(Link::Root(n)),
            (Item::Node(_), Item::Node(n)) => Some(Link::Child(n)),
            _ => None,
        }
    }

    /// Children's blocks in rows no wider than `limit`.
    fn rows(&self, kids: Vec<Block>, limit: f64) -> Vec<Vec<Block>> {
        let mut rows: Vec<Vec<Block>> = Vec::new();
        let mut width = 0.0;
        for k in kids {
            let add = if width > 0.0 { H_GAP + k.w } else { k.w };
            match rows.last_mut() {
                Some(row) if width + add <= limit => {
                    width += add;
                    row.push(k);
                }
                _ => {
                    width = k.w;
                    rows.push(vec![k]);
                }
            }
        }
        rows
    }

    fn block(&self, item: Item) -> Block {
        let kids: Vec<Item> = self.children(item);
        match item {
            Item::Top => self.stack(item, kids, 0.0, 0.0, false),
            Item::Numa(n) => self.framed(item, kids, Frame::Numa(n), false),
            Item::HostBridge(h) => self.framed(item, kids, Frame::HostBridge(h), true),
            Item::Node(_) => self.stack(item, kids, 0.0, 0.0, true),
        }
    }

    /// `item`'s children inside a frame (a NUMA node, a host bridge) with
    /// its label on top; the item itself is a box when `boxed`.
    fn framed(&self, item: Item, kids: Vec<Item>, frame: Frame, boxed: bool) -> Block {
        let mut b = self.stack(item, kids, PAD, PAD + LABEL_H, boxed);
        b.w += PAD;
        b.h += PAD;
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: b.w,
            h: b.h,
        };
        b.frames.insert(0, (frame, whole));
        b
    }

    /// Lays out `item` (a box when `boxed`) with its children below, at
    /// offset (ox, oy) inside the block.
    fn stack(&self, item: Item, kids: Vec<Item>, ox: f64, oy: f64, boxed: bool) -> Block {
        let child_blocks: Vec<Block> = kids.iter().map(|&k| self.block(k)).collect();
        let mut b = Block::default();
        let top = if boxed { oy + BOX_H + V_GAP } else { oy };
        if child_blocks.is_empty() {
            if boxed {
                b.boxes.push((
                    item,
                    Rect {
                        x: ox,
                        y: oy,
                        w: BOX_W,
                        h: BOX_H,
                    },
                ));
            }
            b.w = ox + if boxed { BOX_W } else { 0.0 };
            b.h = oy + if boxed { BOX_H } else { 0.0 };
            return b;
        }
        let one_row_w: f64 =
            child_blocks.iter().map(|c| c.w).sum::<f64>() + H_GAP * (child_blocks.len() - 1) as f64;
        let limit = (self.max_w - ox).max(BOX_W);
        let wrapped = one_row_w > limit && child_blocks.len() > 1;
        let indent = if wrapped && boxed { INDENT } else { 0.0 };
        let rows = if wrapped {
            self.rows(child_blocks, limit - indent)
        } else {
            vec![child_blocks]
        };
        let row_widths: Vec<f64> = rows
            .iter()
            .map(|r| r.iter().map(|c| c.w).sum::<f64>() + H_GAP * (r.len() - 1) as f64)
            .collect();
        let rows_w = row_widths.iter().cloned().fold(0.0, f64::max) + indent;
        let inner_w = if boxed { rows_w.max(BOX_W) } else { rows_w };
        // The parent: centred over a single row, at the left over stacked
        // rows (the trunk comes down from it).
        let (box_x, row_x) = if wrapped {
            (ox, ox + indent)
        } else if boxed {
            let bx = ox + (inner_w - BOX_W) / 2.0;
            (bx, ox + (inner_w - rows_w) / 2.0)
        } else {
            (ox, ox)
        };
        let parent = Rect {
            x: box_x,
            y: oy,
            w: BOX_W,
            h: BOX_H,
        };
        if boxed {
            b.boxes.push((item, parent));
        }
        let trunk_x = box_x + 12.0;
        let mut y = top;
        for (r, row) in rows.into_iter().enumerate() {
            let row_h = row.iter().map(|c| c.h).fold(0.0, f64::max);
            let mut x = row_x;
            // The horizontal bus halfway up the gap above the row.
            let gap_above = if r == 0 { V_GAP } else { ROW_GAP };
            let bus_y = y - gap_above / 2.0;
            for child in row {
                if boxed
                    && let Some(first) = child.boxes.first()
                    && let Some(link) = Self::link_to(first.0, item)
                {
                    let (cx, _) = first.1.shifted(x, y).bottom_centre();
                    let (px, py) = if wrapped {
                        (trunk_x, parent.y + parent.h)
                    } else {
                        parent.bottom_centre()
                    };
                    let child_top = first.1.y + y;
                    b.links.push((
                        link,
                        vec![(px, py), (px, bus_y), (cx, bus_y), (cx, child_top)],
                    ));
                }
                let w = child.w;
                b.absorb(child, x, y);
                x += w + H_GAP;
            }
            y += row_h + ROW_GAP;
        }
        b.w = ox + inner_w;
        b.h = y - ROW_GAP;
        b
    }
}

/// Lays out the whole tree, narrowing the page until the picture is no
/// wider than [`MAX_ASPECT`] times its height (or cannot get narrower).
pub fn layout(tree: &Tree) -> Layout {
    let mut roots = vec![Vec::new(); tree.host_bridges.len()];
    for (id, n) in tree.nodes_with_ids() {
        if n.parent.is_none()
            && let Some(r) = roots.get_mut(n.host_bridge)
        {
            r.push(id);
        }
    }
    let mut numa: Vec<Option<i32>> = tree.host_bridges.iter().map(|h| h.numa_node).collect();
    numa.sort_by_key(|n| (n.is_none(), *n));
    numa.dedup();
    let mut ctx = Ctx {
        tree,
        roots,
        numa,
        max_w: f64::INFINITY,
    };
    let mut best = ctx.block(Item::Top);
    for _ in 0..40 {
        if best.w <= MAX_ASPECT * best.h || best.w <= 3.0 * BOX_W {
            break;
        }
        ctx.max_w = best.w * 0.85;
        let next = ctx.block(Item::Top);
        if next.w >= best.w {
            break;
        }
        best = next;
    }
    finish(tree, best)
}

fn finish(tree: &Tree, b: Block) -> Layout {
    let mut out = Layout {
        width: b.w,
        height: b.h,
        nodes: vec![None; tree.nodes.len()],
        host_bridges: vec![None; tree.host_bridges.len()],
        frames: b.frames,
        links: b.links,
    };
    for (item, r) in b.boxes {
        match item {
            Item::Node(n) => out.nodes[n] = Some(r),
            Item::HostBridge(h) => out.host_bridges[h] = Some(r),
            Item::Top | Item::Numa(_) => {}
        }
    }
    out
}
