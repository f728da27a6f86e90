//! Hostile text: random bytes, hex cut mid-line, very long inputs, an
//! impossible `-tv` tree, CRLF, UTF-16. Every parser must give notes or
//! a clear error, never a panic, and keep its notes bounded.

use proptest::prelude::*;

use super::*;
use crate::topology::Tree;

/// Real `lspci -tvnn` and `lspci -vvvnn -xxx` of the acs_switch fixture.
const SAMPLE: &str = include_str!("../../../tests/fixtures/evidence/acs_switch_paste.txt");

fn facts(text: &str) -> Facts {
    scan(
        text,
        &ScanOptions {
            no_names: true,
            ..Default::default()
        },
    )
}

/// The whole way: facts, tree, diagnosis.
fn analyse(text: &str) {
    let f = facts(text);
    let tree = Tree::build(f);
    let opts = crate::diagnose::Options {
        all_pairs: true,
        ..Default::default()
    };
    let _ = crate::diagnose::diagnose(&tree, &opts);
}

/// Per device: address, parent, host bridge, config length, vendor.
type Summary = Vec<(String, Option<crate::pci::Bdf>, String, usize, Option<u16>)>;

fn summary(f: &Facts) -> Summary {
    f.devices
        .iter()
        .map(|d| {
            (
                d.bdf.to_string(),
                d.parent,
                d.host_bridge.clone(),
                d.config.len(),
                d.vendor,
            )
        })
        .collect()
}

#[test]
fn sample_reads_whole() {
    let f = facts(SAMPLE);
    assert_eq!(f.devices.len(), 13);
    assert!(f.devices.iter().all(|d| d.source == Source::LspciHex));
    // 256 bytes of hex, and the extended space from the -vvv text for the
    // PCIe functions.
    assert!(
        f.devices
            .iter()
            .all(|d| matches!(d.config.len(), 256 | 4096))
    );
    assert!(
        !f.limitations
            .iter()
            .any(|l| l.kind == LimitationKind::EvidenceLine),
        "{:?}",
        f.limitations
    );
}

#[test]
fn crlf_and_utf16_read_the_same() {
    let lf = summary(&facts(SAMPLE));
    let crlf = SAMPLE.replace('\n', "\r\n");
    assert_eq!(summary(&facts(&crlf)), lf);
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(SAMPLE.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let text = decode_text(utf16);
    assert!(recognise(&text).is_ok());
    assert_eq!(summary(&facts(&text)), lf);
}

#[test]
fn hex_cut_mid_line_is_a_note_with_its_line() {
    // Cut the dump of the first function inside its line at 0x30.
    let at = SAMPLE.find("\n30: ").unwrap() + 1;
    let cut = format!(
        "{}{}",
        &SAMPLE[..at + 12],
        &SAMPLE[SAMPLE[at..].find('\n').unwrap() + at..]
    );
    let line = SAMPLE[..at].lines().count() + 1;
    let f = facts(&cut);
    let note = f
        .limitations
        .iter()
        .find(|l| l.kind == LimitationKind::EvidenceLine)
        .expect("a note");
    assert!(
        note.message.starts_with(&format!("line {line}:")),
        "{}",
        note.message
    );
    // That function falls back to its -v text; the others keep their bytes.
    let hex = f
        .devices
        .iter()
        .filter(|d| d.source == Source::LspciHex)
        .count();
    assert_eq!(hex, 12);
}

#[test]
fn impossible_tree_is_noted_not_followed() {
    let text = "-[0000:00]-+-00.0----01.0\n           \\-02.0-[01]----00.0\n";
    let f = facts(text);
    assert!(
        f.limitations
            .iter()
            .any(|l| l.message.contains("impossible nesting"))
    );
    assert_eq!(f.devices.len(), 3);
}

#[test]
fn long_garbage_keeps_notes_bounded() {
    // 200,000 lines: a header, then lines that look like its detail lines
    // or hex but are not.
    let mut text = String::from("00:00.0 Host bridge: Intel Corporation Device 2020\n");
    for i in 0..200_000 {
        text.push_str(match i % 4 {
            0 => "\tCapabilities: [zz] nonsense\n",
            1 => "40: 01 zz\n",
            2 => "random prose line\n",
            _ => "\t\tACSCtl:\tSrcValid+\n",
        });
    }
    let f = facts(&text);
    let notes = f
        .limitations
        .iter()
        .filter(|l| l.kind == LimitationKind::EvidenceLine)
        .count();
    assert!(notes <= MAX_LINE_NOTES + 1, "{notes} notes");
    assert_eq!(f.devices.len(), 1);
}

#[test]
fn not_evidence_says_what_it_saw() {
    let e = recognise("hello\nworld\n").unwrap_err().to_string();
    assert!(e.contains("\"hello\""), "{e}");
    assert!(matches!(recognise("  \n"), Err(EvidenceError::Empty)));
    assert!(recognise("$ lspci -tv\n-[0000:00]---00.0\n").is_ok());
}

/// Lines that look like lspci's, for the mutation proptest.
fn line() -> impl Strategy<Value = String> {
    let real: Vec<&'static str> = SAMPLE.lines().collect();
    prop_oneof![
        // A real line, cut anywhere (on a char boundary).
        (
            prop::sample::select(real.clone()),
            any::<prop::sample::Index>()
        )
            .prop_map(|(l, i)| {
                let mut at = i.index(l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l[..at].to_string()
            }),
        // A real line whole.
        prop::sample::select(real).prop_map(str::to_string),
        // Tree-ish and hex-ish noise.
        "[-+\\\\| \\[\\]0-9a-f:.]{0,40}",
        "[0-9a-f]{2,3}:( [0-9a-fz]{1,2}){0,17}",
        "\t{0,2}[A-Za-z]{1,8}:\t?[A-Za-z+\\- ,=0-9]{0,40}",
        ".{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let text = decode_text(bytes);
        if recognise(&text).is_ok() {
            analyse(&text);
        }
    }

    #[test]
    fn mangled_lspci_never_panics(lines in prop::collection::vec(line(), 0..200), crlf in any::<bool>()) {
        let sep = if crlf { "\r\n" } else { "\n" };
        let text = lines.join(sep);
        let _ = recognise(&text);
        analyse(&text);
    }

    #[test]
    fn each_parser_takes_any_line(l in ".{0,200}") {
        let _ = lspci_hex::parse(&l);
        let _ = sections::prompt_command(&l);
        if let Some((_, rest)) = lspci_verbose::header(&l) {
            let mut v = Verbose::from_header(rest, 1);
            v.feed(&l);
        }
        let mut v = Verbose::default();
        v.feed(&l);
        let mut t = TreeParser::default();
        t.feed(&l, 1);
        t.feed(&format!("-[0000:00]-{l}"), 2);
        let mut h = host::HostText::default();
        h.feed(&l);
        let mut x = hwloc::XmlParser::default();
        x.feed("<topology>", 1);
        x.feed(&l, 2);
    }
}

#[test]
fn a_256_byte_dump_leaves_the_extended_space_unknown() {
    // The hex lines alone (no -v text): 256 bytes of PCIe functions.
    let hex_only: String = SAMPLE
        .lines()
        .filter(|l| lspci_hex::looks_like_hex(l) || lspci_verbose::header(l).is_some())
        .map(|l| format!("{l}\n"))
        .collect();
    let tree = Tree::build(facts(&hex_only));
    let port = tree
        .find("0000:06:08.0".parse().unwrap())
        .map(|i| tree.node(i))
        .unwrap();
    assert!(port.facts.unknown_registers.contains(Register::AcsCtrl));
    // With the -vvv text beside it (the sample), ACSCtl comes from the text.
    let tree = Tree::build(facts(SAMPLE));
    let port = tree
        .find("0000:06:08.0".parse().unwrap())
        .map(|i| tree.node(i))
        .unwrap();
    assert_eq!(port.facts.config.len(), 4096);
    assert_eq!(port.caps.acs.and_then(|a| a.ctrl).map(|c| c.0), Some(0x0c));
}

#[test]
fn sections_that_disagree_are_named() {
    // The same port twice, ACSCtl changed in the second paste.
    let block: String = SAMPLE
        .split("\n\n")
        .find(|b| b.starts_with("06:08.0"))
        .unwrap()
        .lines()
        .filter(|l| lspci_hex::parse(l).is_none())
        .map(|l| format!("{l}\n"))
        .collect();
    let changed = block.replace(
        "ACSCtl:\tSrcValid- TransBlk- ReqRedir+ CmpltRedir+",
        "ACSCtl:\tSrcValid- TransBlk- ReqRedir- CmpltRedir-",
    );
    assert_ne!(block, changed, "the sample's ACSCtl line moved");
    let f = facts(&format!("{block}\n{changed}"));
    let c: Vec<_> = f
        .limitations
        .iter()
        .filter(|l| l.kind == LimitationKind::EvidenceConflict)
        .collect();
    assert_eq!(c.len(), 1, "{:?}", f.limitations);
    assert!(c[0].message.contains("ACSCtl"), "{}", c[0].message);
    // A hex dump against an edited -v text: the hex is used, and said.
    let full = SAMPLE
        .split("\n\n")
        .find(|b| b.starts_with("06:08.0"))
        .unwrap();
    let edited = full.replace("Width x4", "Width x1");
    let f = facts(&edited);
    assert!(
        f.limitations
            .iter()
            .any(|l| l.kind == LimitationKind::EvidenceConflict && l.message.contains("LnkSta")),
        "{:?}",
        f.limitations
    );
}
