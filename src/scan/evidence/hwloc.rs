//! hwloc exports (`lstopo --of xml`, hwloc 1.x and 2.x): the PCI objects
//! with their bus IDs, IDs and class (`pci_type="0302 [10de:20b5]
//! [10de:1533] a1"`), the bridges' bus ranges (`bridge_pci="0000:[01-02]"`)
//! and NUMA locality (the NUMANode among the memory children of the CPU
//! object the I/O tree hangs below). A small tolerant reader of our own:
//! hwloc writes one tag per line (topology-xml-nolibxml.c), and anything
//! else is skipped with a note rather than failing the file.

use crate::pci::Bdf;

/// One PCI function of the export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PciObject {
    pub bdf: Bdf,
    pub ids: Option<(u16, u16)>,
    pub class: Option<u32>,
    pub revision: Option<u8>,
    pub name: Option<String>,
    pub numa_node: Option<i32>,
    /// The bridge above it (a PCI bridge object), None on a root bus.
    pub parent: Option<Bdf>,
    /// `pciDDDD:BB` of the host bridge above it.
    pub host_bridge: Option<String>,
    /// Secondary and subordinate bus of a bridge.
    pub range: Option<(u8, u8)>,
    /// (GT/s, width) when they can be told apart; hwloc stores GB/s only.
    pub link: Option<(f64, Option<u8>)>,
}

/// A line that starts or belongs to an hwloc export.
pub fn is_hwloc_line(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("<topology") || t.starts_with("<!DOCTYPE topology")
}

#[derive(Debug)]
struct Open {
    bdf: Option<Bdf>,
    host_bridge: Option<String>,
    numa: Option<i32>,
}

#[derive(Debug, Default)]
pub struct XmlParser {
    active: bool,
    stack: Vec<Open>,
    objects: Vec<PciObject>,
    notes: Vec<(usize, String)>,
}

/// The value of `name="..."` in a tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(" {name}=\"");
    let at = tag.find(&pat)? + pat.len();
    let end = tag[at..].find('"')?;
    Some(&tag[at..at + end])
}

impl XmlParser {
    pub fn active(&self) -> bool {
        self.active
    }

    pub fn feed(&mut self, line: &str, no: usize) {
        let t = line.trim();
        if t.starts_with("<topology") {
            self.active = true;
            return;
        }
        if t.starts_with("</topology") {
            self.active = false;
            self.stack.clear();
            return;
        }
        if !self.active {
            return;
        }
        if t.starts_with("</object") {
            self.stack.pop();
            return;
        }
        if !t.starts_with("<object") {
            return; // <info>, <distances>, <page_type>, ...
        }
        let closed = t.ends_with("/>");
        let kind = attr(t, "type").unwrap_or("").to_string();
        let busid = attr(t, "pci_busid");
        let bdf = match busid.map(str::parse::<Bdf>) {
            Some(Ok(b)) => Some(b),
            Some(Err(_)) => {
                self.notes.push((
                    no,
                    format!("hwloc object with pci_busid {busid:?} is not a PCI address; skipped"),
                ));
                None
            }
            None => None,
        };
        let parent_hb = self.stack.last().and_then(|o| o.host_bridge.clone());
        let parent_numa = self.stack.last().and_then(|o| o.numa);
        let mut host_bridge = parent_hb.clone();
        // A host bridge: bridge_type="0-1", bridge_pci="0000:[00-0a]".
        if kind == "Bridge"
            && attr(t, "bridge_type").is_some_and(|b| b.starts_with("0-"))
            && let Some(bp) = attr(t, "bridge_pci")
            && let Some((dom, range)) = bp.split_once(":[")
        {
            let bus = range.split('-').next().unwrap_or("00");
            host_bridge = Some(format!("pci{dom}:{bus}"));
        }
        if kind == "NUMANode" {
            // A memory child: the NUMA node of its parent's I/O children.
            if let (Some(p), Some(n)) = (self.stack.last_mut(), attr(t, "os_index")) {
                p.numa = p.numa.or(n.parse().ok());
            }
        }
        if let Some(bdf) = bdf
            && matches!(kind.as_str(), "PCIDev" | "Bridge")
        {
            let mut o = PciObject {
                bdf,
                parent: self.stack.iter().rev().find_map(|o| o.bdf),
                host_bridge: host_bridge.clone(),
                numa_node: parent_numa.or_else(|| self.stack.iter().rev().find_map(|o| o.numa)),
                ..Default::default()
            };
            // `0302 [10de:20b5] [10de:1533] a1`
            if let Some(pt) = attr(t, "pci_type") {
                let mut w = pt.split_whitespace();
                o.class = w
                    .next()
                    .and_then(|c| u32::from_str_radix(c, 16).ok())
                    .map(|c| c << 8);
                o.ids = w.next().and_then(|i| {
                    let (v, d) = i.trim_matches(['[', ']']).split_once(':')?;
                    Some((
                        u16::from_str_radix(v, 16).ok()?,
                        u16::from_str_radix(d, 16).ok()?,
                    ))
                });
                o.revision = w.nth(1).and_then(|r| u8::from_str_radix(r, 16).ok());
            }
            if let Some(bp) = attr(t, "bridge_pci")
                && let Some((_, r)) = bp.split_once(":[")
                && let Some((s, e)) = r.trim_end_matches(']').split_once('-')
            {
                o.range = u8::from_str_radix(s, 16)
                    .ok()
                    .zip(u8::from_str_radix(e, 16).ok());
            }
            o.name = attr(t, "name").map(str::to_string);
            self.objects.push(o);
        }
        if !closed {
            self.stack.push(Open {
                bdf,
                host_bridge,
                numa: None,
            });
        }
    }

    pub fn finish(self) -> (Vec<PciObject>, Vec<(usize, String)>) {
        (self.objects, self.notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_objects() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE topology SYSTEM "hwloc2.dtd">
<topology version="2.0">
  <object type="Machine" os_index="0" cpuset="0x000000ff">
    <object type="Package" os_index="0" cpuset="0x0000000f">
      <object type="NUMANode" os_index="1" cpuset="0x0000000f" local_memory="1000"/>
      <object type="Bridge" gp_index="9" bridge_type="0-1" depth="0" bridge_pci="0000:[00-0a]">
        <object type="Bridge" gp_index="10" bridge_type="1-1" depth="1" bridge_pci="0000:[01-01]" pci_busid="0000:00:02.0" pci_type="0604 [8086:2031] [8086:0000] 04" pci_link_speed="0.000000">
          <object type="PCIDev" gp_index="11" pci_busid="0000:01:00.0" pci_type="0302 [10de:20b5] [10de:1533] a1" pci_link_speed="31.507692">
          </object>
        </object>
      </object>
    </object>
  </object>
</topology>"#;
        let mut p = XmlParser::default();
        for (i, l) in xml.lines().enumerate() {
            if p.active() || is_hwloc_line(l) {
                p.feed(l, i + 1);
            }
        }
        let (objs, notes) = p.finish();
        assert!(notes.is_empty());
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].bdf.to_string(), "0000:01:00.0");
        assert_eq!(objs[1].parent.unwrap().to_string(), "0000:00:02.0");
        assert_eq!(objs[1].host_bridge.as_deref(), Some("pci0000:00"));
        assert_eq!(objs[1].ids, Some((0x10de, 0x20b5)));
        assert_eq!(objs[1].class, Some(0x030200));
        assert_eq!(objs[1].numa_node, Some(1));
        assert_eq!(objs[0].range, Some((1, 1)));
    }
}
