//! Legends and wrapping (issue 14.7): every symbol a matrix shows is in
//! its legend, on every fixture; `topo` explains the ACS bits it prints;
//! `--width 60` never splits a PCI address or a command, and no line is
//! longer than 60 unless it cannot be broken (one word, a command, a row
//! of a table, whose columns must stay aligned).

mod common;

use common::{p2pdoctor, spec_names};
use serde_json::Value;

fn run(root: &std::path::Path, args: &[&str]) -> String {
    let out = p2pdoctor()
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of the section that starts with a line beginning `head`, up
/// to the next blank line.
fn section<'a>(text: &'a str, head: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(head))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// The legend's symbols: the first word of each entry line.
fn legend_symbols(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split("  ").map(str::trim).find(|w| !w.is_empty()))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_matrix_symbol_is_in_its_legend() {
    for name in spec_names() {
        let b = common::build(&name);
        let text = run(&b.root(), &["check"]);
        let rows = section(&text, "pairs (rows");
        if rows.is_empty() {
            continue;
        }
        let legend_text = text
            .split("\nlegend\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: no legend:\n{text}"));
        let legend: Vec<&str> = legend_text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .collect();
        let symbols = legend_symbols(&legend);
        let has = |s: &str| symbols.iter().any(|x| x == s);
        // Every row but the header: cells after the row label.
        for row in &rows[1..] {
            for c in row.split_whitespace().skip(1) {
                let code = c.chars().next().unwrap();
                match code {
                    'B' | 'H' | 'N' => {
                        assert!(has(&format!("{code}<n>")), "{name}: {c} not in {symbols:?}");
                        let digits: String = c.chars().filter(char::is_ascii_digit).collect();
                        assert!(
                            legend.iter().any(|l| l.contains("shown here:")
                                && l.split("shown here:")
                                    .nth(1)
                                    .unwrap()
                                    .split(", ")
                                    .any(|d| d.trim() == digits))
                                || legend_text.contains(&format!(" {digits},"))
                                || legend_text.contains(&format!(" {digits}\n")),
                            "{name}: distance {digits} of {c} not explained:\n{legend_text}"
                        );
                        assert!(has("<n>"), "{name}");
                    }
                    'X' | '-' => assert!(has(&code.to_string()), "{name}: {c}: {symbols:?}"),
                    _ => panic!("{name}: unknown cell {c}"),
                }
                for mark in ['*', '?'] {
                    if c.contains(mark) {
                        assert!(has(&mark.to_string()), "{name}: {c}: {symbols:?}");
                    }
                }
            }
        }
        // The class matrix, when there is one.
        let classes = section(&text, "topology (like nvidia-smi");
        if classes.is_empty() {
            continue;
        }
        let tail: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("topology (like nvidia-smi"))
            .collect();
        let legend: Vec<&str> = tail
            .iter()
            .skip(1)
            .skip_while(|l| !l.trim().is_empty())
            .skip(1)
            .skip_while(|l| !l.trim().is_empty())
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .copied()
            .collect();
        let symbols = legend_symbols(&legend);
        let has = |s: &str| symbols.iter().any(|x| x == s);
        assert!(
            classes[0].contains("NUMA") && has("NUMA") && has("CPU affinity"),
            "{name}: {symbols:?}"
        );
        let labels = classes[0].split_whitespace().count() - 3; // NUMA, CPU, affinity
        for row in &classes[1..] {
            for c in row.split_whitespace().skip(1).take(labels) {
                let c = c.trim_end_matches('?');
                if c.contains('>') {
                    assert!(has("A>B"), "{name}: {c}");
                }
                for part in c.split('>') {
                    assert!(has(part), "{name}: {part} of {row:?} not in {symbols:?}");
                }
            }
            if row.contains('?') {
                assert!(has("?"), "{name}");
            }
        }
    }
}

#[test]
fn topo_explains_the_acs_bits_it_prints() {
    for name in spec_names() {
        let b = common::build(&name);
        let text = run(&b.root(), &["topo"]);
        let shows_acs = text
            .lines()
            .any(|l| l.split(" · ").any(|p| p.starts_with("ACS ")));
        let Some(legend) = text.split("\nACS bits (ACS Control):").nth(1) else {
            assert!(!shows_acs, "{name}: no ACS legend:\n{text}");
            continue;
        };
        assert!(shows_acs, "{name}: a legend for no ACS word:\n{text}");
        for l in text
            .lines()
            .filter(|l| !l.starts_with("ACS bits (ACS Control):"))
        {
            let Some(acs) = l.split(" · ").find_map(|p| p.strip_prefix("ACS ")) else {
                continue;
            };
            for bit in acs.split_whitespace() {
                let word = match bit {
                    "off" => "off:",
                    "?" => "?:",
                    b => b,
                };
                assert!(
                    legend.contains(word),
                    "{name}: {bit} not explained:\n{legend}"
                );
            }
        }
    }
}

fn is_bdf(w: &str) -> bool {
    let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    w.len() == 12 && w.as_bytes()[4] == b':' && w.as_bytes()[7] == b':' && w.as_bytes()[10] == b'.'
}

#[test]
fn width_60_breaks_no_address_and_no_command() {
    for name in spec_names() {
        let b = common::build(&name);
        let json: Value =
            serde_json::from_str(&run(&b.root(), &["check", "--format", "json"])).unwrap();
        let mut commands: Vec<String> = Vec::new();
        for f in json["findings"].as_array().unwrap() {
            if let Some(fix) = f.get("fix").filter(|x| !x.is_null()) {
                let all = fix["commands"].as_array().unwrap().iter().chain(
                    fix["persist"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .flat_map(|p| p["commands"].as_array().unwrap()),
                );
                commands.extend(all.map(|c| c.as_str().unwrap().to_string()));
            }
        }
        let wide = run(&b.root(), &["check"]);
        let text = run(&b.root(), &["check", "--width", "60"]);
        // Nothing is lost or split: the words are the same, in order.
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            words(&wide),
            words(&text),
            "{name}: wrapping changed the words"
        );
        // Every address is whole on its line (a split one would leave a
        // fragment ending in ':' or starting with a digit group).
        let bdfs = |t: &str| t.split_whitespace().filter(|w| is_bdf(w)).count();
        assert_eq!(bdfs(&wide), bdfs(&text), "{name}");
        let mut in_table = false;
        for l in text.lines() {
            if l.starts_with("pairs (rows") || l.starts_with("topology (like") {
                in_table = true;
            } else if l.trim().is_empty() {
                in_table = false;
            }
            if l.chars().count() <= 60 || in_table {
                continue;
            }
            let t = l.trim();
            assert!(
                !t.contains(' ') || commands.iter().any(|c| c == t),
                "{name}: a line of {} characters that could have been broken:\n{l}",
                l.chars().count()
            );
        }
        // Unwrapped when piped without --width.
        assert!(
            wide.lines().any(|l| l.chars().count() > 60),
            "{name}: piped output is not wrapped"
        );
    }
}
