//! Evidence people already have, read as a machine: lspci output (`-t`,
//! `-v...`, `-x...`, `-F` dumps), ticket pastes with prompts and other
//! commands around it, and hwloc XML exports.
//!
//! One pass over the text sorts each line to a small parser per format
//! (`lspci_tree`, `lspci_verbose`, `lspci_hex`, `host`, `hwloc`); then
//! what they say about each function is merged into the same [`Facts`] a
//! sysfs scan returns, so the tree, the diagnosis and the renderers do
//! not change. A fact the text does not carry stays unknown: a function
//! shown without capabilities gets the 64-byte header view a non-root
//! sysfs read gives, a capability listed without its register lines names
//! them in `unknown_registers`, and host facts the paste lacks stay None,
//! each with a limitation naming the command that would add it.

mod host;
mod hwloc;
mod lspci_hex;
mod lspci_tree;
mod lspci_verbose;
mod sections;
mod synth;

use std::collections::{BTreeMap, BTreeSet};

pub(crate) use sections::decode_text;

use super::{
    DeviceFacts, Facts, HostFacts, HostSources, IommuUnit, Limitation, LimitationKind, Register,
    ScanOptions, Source, parse_cmdline,
};
use crate::pci::Bdf;
use lspci_hex::{Dump, HexLine};
use lspci_tree::{TreeNode, TreeParser};
use lspci_verbose::Verbose;

/// Notes about single lines kept at most (then one line says how many more).
const MAX_LINE_NOTES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(
        "expected a directory, a p2pdoctor snapshot, lspci output (`lspci -tv`, `lspci -vvv`, `lspci -xxxx`, an `lspci -F` dump, or a paste holding them) or an hwloc export (`lstopo --of xml`), but found none of them; the first lines are: {first}"
    )]
    NotRecognised { first: String },
    #[error(
        "the input is empty: paste the output of `sudo lspci -vvv -xxxx` and `lspci -tvnn` into it"
    )]
    Empty,
    #[error(
        "expected lspci output or an hwloc export (text), but found binary data ({bytes} bytes); a p2pdoctor snapshot must be the .tar.gz `p2pdoctor snapshot` wrote"
    )]
    Binary { bytes: usize },
}

/// Whether the text holds anything the parsers read; stops at the first
/// line that is one of lspci's or hwloc's.
pub fn recognise(text: &str) -> Result<(), EvidenceError> {
    if text.trim().is_empty() {
        return Err(EvidenceError::Empty);
    }
    for (_, line) in sections::lines(text) {
        if lspci_verbose::header(line.trim_start()).is_some()
            || lspci_tree::starts_tree(line.trim_start())
            || hwloc::is_hwloc_line(line)
        {
            return Ok(());
        }
    }
    // Random or compressed bytes: say so rather than quote them.
    let head: String = text.chars().take(4096).collect();
    let odd = head
        .chars()
        .filter(|&c| c == char::REPLACEMENT_CHARACTER || (c.is_control() && !c.is_whitespace()))
        .count();
    if odd * 10 > head.chars().count() {
        return Err(EvidenceError::Binary { bytes: text.len() });
    }
    let first: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .map(|l| {
            let l: String = l.chars().take(60).collect();
            format!("{l:?}")
        })
        .collect();
    Err(EvidenceError::NotRecognised {
        first: first.join(", "),
    })
}

/// What all sections say about one function.
#[derive(Debug, Default)]
struct Function {
    verbose: Option<Verbose>,
    dump: Option<Dump>,
    tree: Option<TreeNode>,
    hwloc: Option<hwloc::PciObject>,
}

/// Everything the text says, before it becomes [`Facts`].
#[derive(Debug, Default)]
struct Parsed {
    functions: BTreeMap<Bdf, Function>,
    host: host::HostText,
    notes: Vec<Limitation>,
    line_notes: usize,
    kinds: BTreeSet<Source>,
    hwloc_host: hwloc::HwlocHost,
    /// Lines of `lspci ... -s ...` prompts: the listing is partial.
    filtered: Vec<usize>,
}

impl Parsed {
    fn line_note(&mut self, line: usize, what: &str) {
        self.line_notes += 1;
        if self.line_notes <= MAX_LINE_NOTES {
            self.notes.push(Limitation {
                kind: LimitationKind::EvidenceLine,
                message: format!("line {line}: {what}"),
            });
        }
    }

    fn conflict(&mut self, message: String) {
        self.notes.push(Limitation {
            kind: LimitationKind::EvidenceConflict,
            message,
        });
    }
}

/// The block of lspci output being read.
struct Block {
    bdf: Bdf,
    verbose: Verbose,
    dump: Option<Dump>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut block: Option<Block> = None;
    let mut tree = TreeParser::default();
    let mut xml = hwloc::XmlParser::default();
    let finish = |p: &mut Parsed, block: &mut Option<Block>| {
        if let Some(b) = block.take() {
            add_block(p, b);
        }
    };
    for (no, line) in sections::lines(text) {
        // The hot path first: inside a function's block, its hex lines
        // (a million of them in a large server's `-xxxx`) and its
        // tab-indented detail lines can be nothing else.
        if let Some(b) = block.as_mut() {
            if lspci_hex::looks_like_hex(line)
                && let Some(h) = lspci_hex::parse(line)
            {
                add_hex(&mut p, b, h, no);
                continue;
            }
            if line.starts_with('\t') {
                if !b.verbose.feed(line) {
                    p.line_note(no, &format!("cannot read this line of {}; skipped", b.bdf));
                }
                continue;
            }
        }
        if xml.active() || hwloc::is_hwloc_line(line) {
            finish(&mut p, &mut block);
            xml.feed(line, no);
            continue;
        }
        if sections::is_fence(line) || sections::is_chatter(line) {
            finish(&mut p, &mut block);
            tree.end();
            continue;
        }
        if let Some(cmd) = sections::prompt_command(line) {
            finish(&mut p, &mut block);
            tree.end();
            p.host.start(cmd);
            if cmd.contains("lspci")
                && cmd
                    .split_whitespace()
                    .any(|w| w == "-s" || w.starts_with("-s"))
            {
                p.filtered.push(no);
            }
            continue;
        }
        if line.trim().is_empty() {
            finish(&mut p, &mut block);
            tree.end();
            continue;
        }
        if let Some((bdf, rest)) = lspci_verbose::header(line.trim_start()) {
            finish(&mut p, &mut block);
            tree.end();
            block = Some(Block {
                bdf,
                verbose: Verbose::from_header(rest, no),
                dump: None,
            });
            continue;
        }
        if let Some(b) = block.as_mut() {
            if let Some(h) = lspci_hex::parse(line) {
                add_hex(&mut p, b, h, no);
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if !b.verbose.feed(line) {
                    p.line_note(no, &format!("cannot read this line of {}; skipped", b.bdf));
                }
                continue;
            }
            // Anything else ends the block (another command's output).
            finish(&mut p, &mut block);
        }
        if tree.feed(line, no) {
            continue;
        }
        if p.host.feed(line) {
            continue;
        }
    }
    finish(&mut p, &mut block);
    for (no, why) in std::mem::take(&mut tree.problems) {
        p.line_note(no, &why);
    }
    if !tree.nodes.is_empty() {
        p.kinds.insert(Source::LspciTree);
    }
    for node in tree.nodes {
        let f = p.functions.entry(node.bdf).or_default();
        let mut msg = None;
        if let Some(old) = &f.tree
            && old.parent != node.parent
        {
            msg = Some(format!(
                "{}: two lspci -t trees disagree on its parent ({} at line {}, {} at line {}); the later is used",
                node.bdf,
                old.parent
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "root bus".into()),
                old.line,
                node.parent
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "root bus".into()),
                node.line
            ));
        }
        f.tree = Some(node);
        if let Some(m) = msg {
            p.conflict(m);
        }
    }
    let (objects, xml_notes, hwloc_host) = xml.finish();
    p.hwloc_host = hwloc_host;
    for (no, why) in xml_notes {
        p.line_note(no, &why);
    }
    if !objects.is_empty() {
        p.kinds.insert(Source::Hwloc);
    }
    for o in objects {
        let bdf = o.bdf;
        p.functions.entry(bdf).or_default().hwloc = Some(o);
    }
    p
}

fn add_hex(p: &mut Parsed, b: &mut Block, h: HexLine, no: usize) {
    let dump = b.dump.get_or_insert_with(|| Dump::new(no));
    match h {
        HexLine::Full(off, bytes) => dump.put(off, &bytes),
        HexLine::Cut(off, bytes) => {
            dump.put(off, &bytes);
            p.line_note(
                no,
                &format!(
                    "hex dump line for {} cut short ({} of 16 bytes); config space is taken up to offset {off:#x}",
                    b.bdf,
                    bytes.len()
                ),
            );
        }
    }
}

/// A finished block joins what earlier sections said about the function.
fn add_block(p: &mut Parsed, b: Block) {
    if b.verbose.level > 0 {
        p.kinds.insert(Source::LspciText);
    }
    if b.dump.is_some() {
        p.kinds.insert(Source::LspciHex);
    }
    let mut conflicts = Vec::new();
    let f = p.functions.entry(b.bdf).or_default();
    match &mut f.verbose {
        Some(old) => {
            if let (Some(a), Some(n)) = (old.ids, b.verbose.ids)
                && a != n
            {
                conflicts.push(format!(
                    "{}: the text at line {} says {:04x}:{:04x}, the text at line {} says {:04x}:{:04x}; the later is used",
                    b.bdf, old.line, a.0, a.1, b.verbose.line, n.0, n.1
                ));
            }
            if let (Some(a), Some(n)) = (acs_ctl(old), acs_ctl(&b.verbose))
                && a != n
            {
                conflicts.push(format!(
                    "{}: ACSCtl at line {} is {a:#06x}, at line {} {n:#06x}; the later is used",
                    b.bdf, old.line, b.verbose.line
                ));
            }
            // The more detailed text wins; equal detail, the later.
            if b.verbose.level >= old.level {
                let keep_driver = old.driver.clone();
                *old = b.verbose;
                if old.driver.is_none() {
                    old.driver = keep_driver;
                }
            }
        }
        None => f.verbose = Some(b.verbose),
    }
    if let Some(d) = b.dump {
        match &f.dump {
            Some(old) if old.len() > d.len() => {}
            _ => f.dump = Some(d),
        }
    }
    for c in conflicts {
        p.conflict(c);
    }
}

fn acs_ctl(v: &Verbose) -> Option<u16> {
    match &v.caps {
        lspci_verbose::Caps::Listed(c) => c.iter().find_map(|c| c.acs_ctl),
        _ => None,
    }
}

/// Parses an evidence text into facts.
pub fn scan(text: &str, options: &ScanOptions) -> Facts {
    let mut p = parse(text);
    let mut limitations = std::mem::take(&mut p.notes);
    if p.line_notes > MAX_LINE_NOTES {
        limitations.push(Limitation {
            kind: LimitationKind::EvidenceLine,
            message: format!(
                "{} more lines could not be used (not listed)",
                p.line_notes - MAX_LINE_NOTES
            ),
        });
    }
    // Functions of one device with a function > 0: the device is
    // multi-function (Header Type bit 7), as the hardware must say.
    let multi: BTreeSet<(u32, u8, u8)> = p
        .functions
        .keys()
        .filter(|b| b.function > 0)
        .map(|b| (b.domain, b.bus, b.device))
        .collect();
    // One `<access denied>` means lspci ran without root for them all.
    let non_root = p.functions.values().any(|f| {
        f.verbose
            .as_ref()
            .is_some_and(|v| v.caps == lspci_verbose::Caps::AccessDenied)
    });
    // Each function is built on its own (the text rebuilt into bytes, the
    // hex compared with it): on several threads for a large server.
    let functions: Vec<(Bdf, Function)> = std::mem::take(&mut p.functions).into_iter().collect();
    let build = |part: Vec<(Bdf, Function)>| -> Vec<(DeviceFacts, Vec<Limitation>)> {
        part.into_iter()
            .map(|(bdf, f)| {
                let mut notes = Vec::new();
                let is_multi = multi.contains(&(bdf.domain, bdf.bus, bdf.device));
                (device(bdf, f, is_multi, non_root, &mut notes), notes)
            })
            .collect()
    };
    let threads = crate::threads_for(functions.len());
    let built: Vec<(DeviceFacts, Vec<Limitation>)> = if threads == 1 {
        build(functions)
    } else {
        let chunk = functions.len().div_ceil(threads);
        let mut parts = Vec::new();
        let mut rest = functions;
        while rest.len() > chunk {
            let tail = rest.split_off(chunk);
            parts.push(rest);
            rest = tail;
        }
        parts.push(rest);
        std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| s.spawn(|| build(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut devices = Vec::with_capacity(built.len());
    let mut short = 0;
    let mut nested_by_tree = true;
    for (d, notes) in built {
        limitations.extend(notes);
        if d.config.len() <= synth::HEADER {
            short += 1;
        }
        nested_by_tree &= !d.host_bridge.is_empty();
        devices.push(d);
    }
    link_virtual_functions(&mut devices);
    let blind = devices
        .iter()
        .filter(|d| d.unknown_registers.contains(Register::BusNumbers))
        .count();
    if blind > 0 {
        limitations.push(Limitation {
            kind: LimitationKind::EvidenceIncomplete,
            message: format!(
                "{blind} bridges are shown without their bus numbers (plain lspci): which functions sit below them is unknown, so every pair in their domain is uncertain; add `sudo lspci -tvnn` or `lspci -vvv`"
            ),
        });
    }
    if !p.filtered.is_empty() && !p.kinds.contains(&Source::LspciTree) {
        limitations.push(Limitation {
            kind: LimitationKind::EvidenceIncomplete,
            message: format!(
                "the lspci output is filtered with -s (line {}): bridges above the functions shown may be missing, and a function whose bridge is not shown is drawn on a root bus of its own; add `sudo lspci -tvnn` for the nesting",
                p.filtered[0]
            ),
        });
    }
    if !nested_by_tree {
        super::nesting::nest_by_bus_ranges(&mut devices, &mut limitations);
    }
    if !p.filtered.is_empty() && !p.kinds.contains(&Source::LspciTree) {
        // `lspci -s`: a function drawn on a root bus other than 00 may as
        // well sit below a bridge the listing left out.
        for d in devices
            .iter_mut()
            .filter(|d| d.parent.is_none() && d.bdf.bus != 0)
        {
            d.unknown_registers.insert(Register::BusNumbers);
        }
    }
    if short > 0 {
        limitations.push(Limitation {
            kind: LimitationKind::ConfigTruncated,
            message: format!(
                "{short} of {} functions are shown without their capabilities (lspci run without root, or output without -vvv/-xxxx): PCIe port type, ACS, AER, ATS and link registers are unknown for them. Add the output of `sudo lspci -vvv -xxxx`",
                devices.len()
            ),
        });
    }
    let host = host_facts(&mut p, &devices, &mut limitations);
    if !options.no_names {
        super::name_from_pci_ids(&mut devices);
    }
    let kernel_log = std::mem::take(&mut p.host.kernel_log);
    Facts {
        host,
        devices,
        nvme: Vec::new(),
        kernel_log,
        limitations,
    }
}

/// A virtual function's physical function, as the kernel finds it
/// (drivers/pci/iov.c `pci_iov_virtfn_bus()`/`_devfn()`): the PF's routing
/// ID plus First VF Offset plus VF Stride per VF, from the PF's SR-IOV
/// capability. lspci does not print `physfn`; this is where sysfs gets it.
fn link_virtual_functions(devices: &mut [DeviceFacts]) {
    // (VF, PF, the PF's vendor, the VF Device ID)
    let mut vfs: Vec<(Bdf, Bdf, Option<u16>, u16)> = Vec::new();
    for d in devices.iter() {
        // Only functions with an extended space can carry SR-IOV; a walk
        // of the extended headers spares decoding the rest.
        if d.config.len() <= 0x100 || !has_ext_cap(&d.config, 0x10) {
            continue;
        }
        let Some(s) = crate::pci::decode(&d.config).sriov else {
            continue;
        };
        let rid = u32::from(d.bdf.bus) << 8 | u32::from(d.bdf.devfn());
        for i in 0..u32::from(s.num_vfs) {
            let vf = rid + u32::from(s.vf_offset) + i * u32::from(s.vf_stride);
            if vf > 0xffff {
                break;
            }
            let (bus, devfn) = ((vf >> 8) as u8, vf as u8);
            vfs.push((
                Bdf::new(d.bdf.domain, bus, devfn >> 3, devfn & 7),
                d.bdf,
                d.vendor,
                s.vf_device_id,
            ));
        }
    }
    for (vf, pf, vendor, vf_device) in vfs {
        if let Ok(i) = devices.binary_search_by(|d| d.bdf.cmp(&vf))
            && devices[i].physfn.is_none()
            && vf != pf
        {
            let d = &mut devices[i];
            d.physfn = Some(pf);
            // A VF's ID registers read all ones; the kernel takes the PF's
            // vendor and the VF Device ID (iov.c `pci_iov_add_virtfn()`).
            if d.vendor.is_none() && vendor.is_some() {
                d.vendor = vendor;
                d.device = Some(vf_device);
            }
        }
    }
}

/// Whether the extended capability list holds `id` (a bounded walk).
fn has_ext_cap(config: &[u8], id: u16) -> bool {
    let mut at = 0x100usize;
    for _ in 0..(4096 - 256) / 8 {
        let Some(h) = config.get(at..at + 4) else {
            return false;
        };
        let h = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if h == 0 || h == u32::MAX {
            return false;
        }
        if h as u16 == id {
            return true;
        }
        at = (h >> 20) as usize & 0xffc;
        if at < 0x100 {
            return false;
        }
    }
    false
}

/// One function's facts from all the sections that show it.
fn device(
    bdf: Bdf,
    f: Function,
    multifunction: bool,
    non_root: bool,
    notes: &mut Vec<Limitation>,
) -> DeviceFacts {
    let v = f.verbose.as_ref();
    let t = f.tree.as_ref();
    let ids = v
        .and_then(|v| v.ids)
        .or(t.and_then(|t| t.ids))
        .or(f.hwloc.as_ref().and_then(|h| h.ids));
    let class = v
        .and_then(|v| v.class)
        .or(f.hwloc.as_ref().and_then(|h| h.class));
    let tree_buses = t
        .and_then(|t| t.range)
        .or(f.hwloc.as_ref().and_then(|h| h.range))
        .map(|(s, e)| (bdf.bus, s, e));
    let text_buses = v.and_then(|v| v.buses);
    if let (Some(a), Some(b)) = (tree_buses, text_buses)
        && (a.1, a.2) != (b.1, b.2)
    {
        notes.push(Limitation {
            kind: LimitationKind::EvidenceConflict,
            message: format!(
                "{bdf}: lspci -t shows buses [{:02x}-{:02x}], the -v text secondary={:02x} subordinate={:02x}; the -v text is used",
                a.1, a.2, b.1, b.2
            ),
        });
    }
    let header = synth::Header {
        ids,
        class,
        revision: v.and_then(|v| v.revision),
        bridge: class.is_some_and(|c| c >> 8 == 0x0604 || c >> 8 == 0x0609)
            || text_buses.is_some()
            || tree_buses.is_some(),
        buses: text_buses.or(tree_buses),
        multifunction,
    };
    let mut d = DeviceFacts {
        bdf,
        ..Default::default()
    };
    let mut line_notes = Vec::new();
    let text_config = v.map(|v| {
        synth::from_text(
            v,
            &header,
            non_root,
            &mut d.unknown_registers,
            &mut line_notes,
        )
    });
    let dump = f.dump.map(|dump| {
        let line = dump.first_line;
        (dump.config(), line)
    });
    match (dump, text_config) {
        (Some((hex, line)), text) if hex.len() >= synth::HEADER => {
            if let Some(text) = &text {
                compare(bdf, &hex, text, &d.unknown_registers, line, notes);
            }
            d.source = Source::LspciHex;
            let text_unknown = std::mem::take(&mut d.unknown_registers);
            d.config = hex;
            if d.config.len() == 256 {
                // `-xxx` dumps 256 bytes, whatever the device has: the
                // extended space (ACS, AER, ATS) was not dumped. The -v
                // text of the same function may show it: take it from
                // there; otherwise a PCIe function's is unknown.
                match text {
                    Some(t) if t.len() == 4096 => {
                        d.config.extend_from_slice(&t[256..]);
                        for r in [
                            Register::AcsCtrl,
                            Register::AerStatus,
                            Register::AtsCtrl,
                            Register::AcsEgressVector,
                        ] {
                            if text_unknown.contains(r) {
                                d.unknown_registers.insert(r);
                            }
                        }
                    }
                    _ if crate::pci::decode(&d.config).express.is_some() => {
                        for r in [Register::AcsCtrl, Register::AerStatus, Register::AtsCtrl] {
                            d.unknown_registers.insert(r);
                        }
                    }
                    _ => {}
                }
            }
        }
        (dump, Some(text)) => {
            if let Some((hex, line)) = dump {
                notes.push(Limitation {
                    kind: LimitationKind::EvidenceLine,
                    message: format!(
                        "line {line}: the hex dump of {bdf} has only {} whole bytes from offset 0; the -v text is used",
                        hex.len()
                    ),
                });
            }
            d.config = text;
            d.source = Source::LspciText;
        }
        (dump, None) => {
            if let Some((hex, line)) = dump {
                notes.push(Limitation {
                    kind: LimitationKind::EvidenceLine,
                    message: format!(
                        "line {line}: the hex dump of {bdf} has only {} whole bytes from offset 0 (cut short?); only the header's shape is used",
                        hex.len()
                    ),
                });
            }
            d.config = synth::header_only(&header, None);
            d.unknown_registers.insert(crate::scan::Register::Subsystem);
            d.source = if t.is_some() {
                Source::LspciTree
            } else if f.hwloc.is_some() {
                Source::Hwloc
            } else {
                Source::LspciText
            };
        }
    }
    // A bridge shown without its bus numbers (plain `lspci`, `-nn`, `-k`):
    // the nesting below it cannot be told.
    if header.bridge && header.buses.is_none() && d.source != Source::LspciHex {
        d.unknown_registers.insert(Register::BusNumbers);
    }
    // Bus Master Enable is in `Control:` (-vv) or `Flags:` (-v) only.
    if d.source != Source::LspciHex && v.and_then(|v| v.bus_master).is_none() {
        d.unknown_registers.insert(crate::scan::Register::Command);
    }
    for n in line_notes {
        notes.push(Limitation {
            kind: LimitationKind::EvidenceLine,
            message: format!("{bdf}: {n}"),
        });
    }
    // Identity: the text's IDs (a VF's ID registers read all ones), else
    // the bytes'.
    let from_bytes = d.source == Source::LspciHex && d.config.len() >= 0x10;
    let c = &d.config;
    d.vendor = ids
        .map(|i| i.0)
        .or_else(|| from_bytes.then(|| u16::from_le_bytes([c[0], c[1]])))
        .filter(|&v| v != 0xffff);
    d.device = ids
        .map(|i| i.1)
        .or_else(|| from_bytes.then(|| u16::from_le_bytes([c[2], c[3]])))
        .filter(|_| d.vendor.is_some());
    // The bytes' class holds the prog-if, which terse text (no -v) omits.
    d.class = from_bytes
        .then(|| u32::from_le_bytes([c[9], c[10], c[11], 0]))
        .or(class);
    d.revision = v
        .and_then(|v| v.revision)
        .or_else(|| from_bytes.then(|| c[8]))
        .or_else(|| v.filter(|v| v.level > 0 || d.class.is_some()).map(|_| 0));
    if let Some(v) = v {
        d.driver = v.driver.clone();
        d.numa_node = v.numa_node.filter(|&n| n >= 0);
        d.iommu_group = v.iommu_group;
        d.bars = v.bars.clone();
        if !v.name.is_empty() {
            // Until pci.ids names it: the whole name as lspci printed it.
            d.vendor_name = Some(v.name.clone());
        }
    } else if let Some(name) = t.and_then(|t| t.name.clone()) {
        d.vendor_name = Some(name);
    }
    if let Some(h) = &f.hwloc {
        if d.numa_node.is_none() {
            d.numa_node = h.numa_node;
        }
        if d.vendor_name.is_none() {
            d.vendor_name = h.name.clone();
        }
    }
    if let Some(t) = t {
        d.host_bridge = format!("pci{:04x}:{:02x}", t.root.0, t.root.1);
        d.parent = t.parent;
    } else if let Some(h) = f.hwloc.as_ref().filter(|h| h.host_bridge.is_some()) {
        d.host_bridge = h.host_bridge.clone().unwrap_or_default();
        d.parent = h.parent;
    }
    d
}

/// A hex dump and the -v text of one function should say the same; when
/// they do not (two runs pasted, an edited paste), say so.
fn compare(
    bdf: Bdf,
    hex: &[u8],
    text: &[u8],
    unknown: &crate::scan::UnknownRegisters,
    line: usize,
    notes: &mut Vec<Limitation>,
) {
    use crate::scan::Register;
    if text.len() <= synth::HEADER {
        return;
    }
    let (a, b) = (crate::pci::decode(hex), crate::pci::decode(text));
    let mut differ = Vec::new();
    let pt = |d: &crate::pci::Decoded| d.express.as_ref().map(|e| e.port_type.as_str());
    if a.capabilities_readable && pt(&a) != pt(&b) {
        differ.push(format!(
            "port type {:?} (hex) vs {:?} (text)",
            pt(&a),
            pt(&b)
        ));
    }
    if !unknown.contains(Register::AcsCtrl)
        && a.extended_readable
        && let (Some(x), Some(y)) = (a.acs.and_then(|a| a.ctrl), b.acs.and_then(|a| a.ctrl))
        && x != y
    {
        differ.push(format!("ACSCtl {:#x} (hex) vs {:#x} (text)", x.0, y.0));
    }
    let link = |d: &crate::pci::Decoded| {
        d.express
            .as_ref()
            .and_then(|e| e.link.as_ref())
            .map(|l| (l.status.speed.0, l.status.width))
    };
    if !unknown.contains(Register::Link)
        && a.capabilities_readable
        && let (Some(x), Some(y)) = (link(&a), link(&b))
        && x != y
    {
        differ.push(format!("LnkSta {x:?} (hex) vs {y:?} (text)"));
    }
    if !differ.is_empty() {
        notes.push(Limitation {
            kind: LimitationKind::EvidenceConflict,
            message: format!(
                "{bdf}: the hex dump (line {line}) and the -v text disagree: {}; the hex dump is used",
                differ.join(", ")
            ),
        });
    }
}

/// The host as far as the paste shows it; the rest is unknown, with a
/// limitation each and the commands that would add it.
fn host_facts(p: &mut Parsed, devices: &[DeviceFacts], notes: &mut Vec<Limitation>) -> HostFacts {
    let kinds = p.kinds.clone();
    let x = std::mem::take(&mut p.hwloc_host);
    let h = &mut p.host;
    let mut sources = HostSources::default();
    let mut host = HostFacts {
        hostname: h.hostname.take().or(x.hostname),
        kernel_release: h.kernel_release.take(),
        ..Default::default()
    };
    let mut missing: Vec<&str> = Vec::new();
    if host.kernel_release.is_none() && x.os_release.is_some() {
        // `OSRelease` of an hwloc export: uname's release there.
        host.kernel_release = x.os_release;
        sources.kernel_release = Some(Source::Hwloc);
    } else if host.kernel_release.is_some() {
        sources.kernel_release = Some(Source::Paste);
    } else {
        missing.push("the kernel release (`uname -r`): the newest kernel's P2PDMA rules and whitelist are assumed, and pairs through a host bridge are not certain");
    }
    if let Some(c) = h.cmdline.take() {
        host.cmdline = parse_cmdline(&c);
        sources.cmdline = Some(Source::Paste);
    } else if !h.grub_cmdline.is_empty() {
        host.cmdline = parse_cmdline(&h.grub_cmdline.join(" "));
        sources.cmdline = Some(Source::GrubConfig);
        notes.push(Limitation {
            kind: LimitationKind::EvidenceIncomplete,
            message: "the kernel command line comes from a GRUB_CMDLINE_LINUX line: configured, maybe not booted (`cat /proc/cmdline` shows what is)".into(),
        });
    } else {
        missing.push("the kernel command line (`cat /proc/cmdline`): pci=disable_acs_redir=, config_acs= and iommu= are taken as absent");
    }
    host.cpu = std::mem::take(&mut h.cpu);
    if h.cpu_source.is_some() {
        sources.cpu = Some(Source::Paste);
    } else if x.cpu_vendor.is_some() {
        host.cpu.vendor = x.cpu_vendor;
        host.cpu.family = x.cpu_family;
        host.cpu.model = x.cpu_model;
        host.cpu.model_name = x.cpu_model_name;
        sources.cpu = Some(Source::Hwloc);
    } else if let Some((vendor, from)) = cpu_vendor_from_host_bridge(devices) {
        host.cpu.vendor = Some(vendor.to_string());
        sources.cpu = Some(Source::Inferred);
        notes.push(Limitation {
            kind: LimitationKind::EvidenceIncomplete,
            message: format!(
                "the CPU vendor ({vendor}) is inferred from the host bridge {from}; its family is unknown (`lscpu`)"
            ),
        });
    } else {
        missing.push("the CPU vendor and family (`lscpu`): whether an AMD Zen host bridge admits any pair is unknown");
    }
    // lscpu under Xen PV says `Hypervisor vendor: Xen`, `Virtualization
    // type: para`: the xen-swiotlb DMA ops refuse every P2P mapping.
    if h.hypervisor_vendor.as_deref() == Some("Xen") {
        host.hypervisor = Some(crate::scan::Hypervisor {
            kind: "xen".into(),
            guest_type: match h.virtualization_type.as_deref() {
                Some("para") => Some("PV".into()),
                Some("full") => Some("HVM".into()),
                _ => None,
            },
            control_domain: None,
            proc_xen: false,
        });
    }
    let lscpu_seen = h.lscpu_seen;
    if !lscpu_seen {
        missing.push("whether the kernel runs under a hypervisor (a Xen PV or PVH dom0 refuses every P2P mapping; `lscpu` shows it): verdicts assume bare metal");
    }
    missing.push("CONFIG_PCI_P2PDMA (the kernel config) is unknown");
    missing.push("the p2pmem state of providers is unknown: every DMA-capable endpoint is taken as a hypothetical provider");
    missing.push("NVMe controller memory buffers (CMB) are not in lspci output");
    // An IOMMU group on any function means an IOMMU is on; its mode
    // (translated or identity) lspci does not show.
    if devices.iter().any(|d| d.iommu_group.is_some()) {
        let kind = match host.cpu.vendor.as_deref() {
            Some("GenuineIntel") => "intel",
            Some("AuthenticAMD" | "HygonGenuine") => "amd",
            _ => "other",
        };
        host.iommu_units = vec![IommuUnit {
            name: "(from the IOMMU groups in the lspci text)".into(),
            kind: kind.into(),
        }];
        sources.iommu_units = Some(Source::Inferred);
        missing
            .push("the IOMMU mode (translated or identity) of each group is not in lspci output");
    } else {
        missing.push("whether an IOMMU is on is unknown (no `IOMMU group:` lines: `sudo lspci -vvv` shows them)");
    }
    sources.kernel_log = (!h.kernel_log.is_empty()).then_some(Source::Paste);
    // `nvidia-smi topo -m` pasted beside lspci: check compares it with
    // its own path classes, as on the machine.
    if let Some(mut t) = super::nvidia::parse_topo_matrix(&h.leftover) {
        t.source = "nvidia-smi topo -m (in the paste)".into();
        t.gpu_addresses = super::nvidia::parse_gpu_addresses(&h.gpu_lines);
        t.p2p_read =
            super::nvidia::parse_p2p_matrix(&h.leftover).map(|m| super::nvidia::P2pMatrix {
                source: "nvidia-smi topo -p2p (in the paste)".into(),
                ..m
            });
        host.nvidia_topology = Some(t);
    }
    h.leftover = String::new();
    if let Some(n) = h.numa_nodes {
        notes.push(Limitation {
            kind: LimitationKind::EvidenceIncomplete,
            message: format!("numactl shows {n} NUMA node(s)"),
        });
    }
    for m in &missing {
        notes.push(Limitation {
            kind: LimitationKind::EvidenceIncomplete,
            message: format!("not in the input: {m}"),
        });
    }
    // The commands that would fill the gaps, in the order of the recipe.
    let short = devices
        .iter()
        .any(|d| d.config.len() <= synth::HEADER || !d.unknown_registers.is_empty());
    let no_ids = devices.iter().any(|d| d.vendor.is_none());
    let wanted: Vec<&str> = [
        (host.kernel_release.is_none(), "uname -r"),
        (sources.cmdline.is_none(), "cat /proc/cmdline"),
        (!lscpu_seen, "lscpu"),
        (!kinds.contains(&Source::LspciTree), "sudo lspci -tvnn"),
        // The hex dump carries the IDs the -v text and the tree's
        // bridges do not print.
        (
            short || no_ids || !kinds.contains(&Source::LspciText),
            "sudo lspci -vvv -xxxx",
        ),
        (
            true,
            "(zcat /proc/config.gz || cat /boot/config-$(uname -r)) | grep P2PDMA",
        ),
        (true, "ls -d /sys/bus/pci/devices/*/p2pmem"),
        (
            true,
            "ls /sys/class/iommu; grep . /sys/kernel/iommu_groups/*/type",
        ),
        (
            sources.kernel_log.is_none(),
            "sudo dmesg | grep -iE 'p2p|acs|dmar|amd-vi|aer'",
        ),
    ]
    .into_iter()
    .filter_map(|(want, cmd)| want.then_some(cmd))
    .collect();
    notes.push(Limitation {
        kind: LimitationKind::EvidenceIncomplete,
        message: format!(
            "for a full reading, add to the paste the output of: {}",
            wanted.join("; ")
        ),
    });
    host.sources = sources;
    host
}

/// `pci_host_bridge_dev()`'s device: the first function of the lowest
/// root bus. Its vendor is the CPU's on x86 (Intel and AMD build the host
/// bridge into the CPU).
fn cpu_vendor_from_host_bridge(devices: &[DeviceFacts]) -> Option<(&'static str, String)> {
    let first = devices
        .iter()
        .filter(|d| d.parent.is_none() && d.bdf.bus == 0 && d.bdf.domain == 0)
        .min_by_key(|d| d.bdf)?;
    let vendor = match first.vendor? {
        0x8086 => "GenuineIntel",
        0x1022 => "AuthenticAMD",
        0x1d94 => "HygonGenuine",
        _ => return None,
    };
    Some((
        vendor,
        format!("{} (vendor {:04x})", first.bdf, first.vendor?),
    ))
}

#[cfg(test)]
mod tests;
