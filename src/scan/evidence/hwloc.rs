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
}

/// What the export says about the machine it ran on (`<info>` lines of
/// the Machine and Package objects).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HwlocHost {
    pub os_release: Option<String>,
    pub hostname: Option<String>,
    pub cpu_vendor: Option<String>,
    pub cpu_family: Option<u32>,
    pub cpu_model: Option<u32>,
    pub cpu_model_name: Option<String>,
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
    /// The NUMA node of this object's locality (its `nodeset`, when it
    /// names exactly one node); I/O objects take their CPU-side
    /// ancestor's.
    numa: Option<i32>,
    /// Index into `objects` for a PCI object (its `<info>` lines name it).
    object: Option<usize>,
}

#[derive(Debug, Default)]
pub struct XmlParser {
    active: bool,
    stack: Vec<Open>,
    objects: Vec<PciObject>,
    notes: Vec<(usize, String)>,
    host: HwlocHost,
}

/// The value of `name="..."` in a tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(" {name}=\"");
    let at = tag.find(&pat)? + pat.len();
    let end = tag[at..].find('"')?;
    Some(&tag[at..at + end])
}

/// The node of a `nodeset="0x00000002"` (32-bit words, highest first,
/// comma-separated) when exactly one bit is set.
fn single_node(nodeset: &str) -> Option<i32> {
    let mut found = None;
    for (i, word) in nodeset.split(',').rev().enumerate() {
        let w = u32::from_str_radix(word.trim().trim_start_matches("0x"), 16).ok()?;
        if w == 0 {
            continue;
        }
        if found.is_some() || w.count_ones() != 1 {
            return None;
        }
        found = Some(i as i32 * 32 + w.trailing_zeros() as i32);
    }
    found
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
        if t.starts_with("<info ")
            && self.stack.last().is_some_and(|o| o.object.is_none())
            && let (Some(k), Some(v)) = (attr(t, "name"), attr(t, "value"))
        {
            // hwloc's own discovery on the exporting machine.
            let h = &mut self.host;
            match k {
                "OSRelease" => h.os_release = Some(v.to_string()),
                "HostName" => h.hostname = Some(v.to_string()),
                "CPUVendor" if h.cpu_vendor.is_none() => h.cpu_vendor = Some(v.to_string()),
                "CPUFamilyNumber" if h.cpu_family.is_none() => h.cpu_family = v.parse().ok(),
                "CPUModelNumber" if h.cpu_model.is_none() => h.cpu_model = v.parse().ok(),
                "CPUModel" if h.cpu_model_name.is_none() => h.cpu_model_name = Some(v.to_string()),
                _ => {}
            }
            return;
        }
        if t.starts_with("<info ") {
            // `<info name="PCIVendor" value="Intel Corporation"/>` below a
            // PCI object: its names, as lspci would print them.
            if let Some(i) = self.stack.last().and_then(|o| o.object)
                && let (Some(k), Some(v)) = (attr(t, "name"), attr(t, "value"))
                && matches!(k, "PCIVendor" | "PCIDevice")
            {
                let o = &mut self.objects[i];
                o.name = Some(match o.name.take() {
                    Some(n) => format!("{n} {v}"),
                    None => v.to_string(),
                });
            }
            return;
        }
        if !t.starts_with("<object") {
            return; // <distances>, <page_type>, ...
        }
        let closed = t.ends_with("/>");
        let kind = attr(t, "type").unwrap_or("");
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
        let parent_numa = self.stack.iter().rev().find_map(|o| o.numa);
        let mut host_bridge = self.stack.last().and_then(|o| o.host_bridge.clone());
        // A host bridge: bridge_type="0-1", bridge_pci="0000:[00-0a]".
        if kind == "Bridge"
            && attr(t, "bridge_type").is_some_and(|b| b.starts_with("0-"))
            && let Some(bp) = attr(t, "bridge_pci")
            && let Some((dom, range)) = bp.split_once(":[")
        {
            let bus = range.split('-').next().unwrap_or("00");
            host_bridge = Some(format!("pci{dom}:{bus}"));
        }
        let io = matches!(kind, "Bridge" | "PCIDev" | "OSDev");
        let numa = if io {
            None
        } else {
            attr(t, "nodeset").and_then(single_node)
        };
        let mut object = None;
        if let Some(bdf) = bdf
            && matches!(kind, "PCIDev" | "Bridge")
        {
            let mut o = PciObject {
                bdf,
                parent: self.stack.iter().rev().find_map(|o| o.bdf),
                host_bridge: host_bridge.clone(),
                numa_node: parent_numa,
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
            object = Some(self.objects.len());
            self.objects.push(o);
        }
        if !closed {
            self.stack.push(Open {
                bdf,
                host_bridge,
                numa,
                object,
            });
        }
    }

    pub fn finish(self) -> (Vec<PciObject>, Vec<(usize, String)>, HwlocHost) {
        (self.objects, self.notes, self.host)
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
    <object type="Package" os_index="0" cpuset="0x0000000f" nodeset="0x00000002">
      <object type="NUMANode" os_index="1" cpuset="0x0000000f" nodeset="0x00000002" local_memory="1000"/>
      <object type="Bridge" gp_index="9" bridge_type="0-1" depth="0" bridge_pci="0000:[00-0a]">
        <object type="Bridge" gp_index="10" bridge_type="1-1" depth="1" bridge_pci="0000:[01-01]" pci_busid="0000:00:02.0" pci_type="0604 [8086:2031] [8086:0000] 04" pci_link_speed="0.000000">
          <object type="PCIDev" gp_index="11" pci_busid="0000:01:00.0" pci_type="0302 [10de:20b5] [10de:1533] a1" pci_link_speed="31.507692">
            <info name="PCIVendor" value="NVIDIA Corporation"/>
            <info name="PCIDevice" value="GA100 [A100 PCIe 80GB]"/>
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
        let (objs, notes, _) = p.finish();
        assert!(notes.is_empty());
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].bdf.to_string(), "0000:01:00.0");
        assert_eq!(objs[1].parent.unwrap().to_string(), "0000:00:02.0");
        assert_eq!(objs[1].host_bridge.as_deref(), Some("pci0000:00"));
        assert_eq!(objs[1].ids, Some((0x10de, 0x20b5)));
        assert_eq!(objs[1].class, Some(0x030200));
        assert_eq!(objs[1].numa_node, Some(1));
        assert_eq!(objs[0].range, Some((1, 1)));
        assert_eq!(
            objs[1].name.as_deref(),
            Some("NVIDIA Corporation GA100 [A100 PCIe 80GB]")
        );
        assert_eq!(single_node("0x00000000,0x00000004"), Some(2));
        assert_eq!(single_node("0x00000001,0x00000000"), Some(32));
        assert_eq!(single_node("0x00000003"), None);
    }
}
