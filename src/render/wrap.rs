//! Wrapping text renderers' prose to the terminal's width.
//!
//! Lines break only at spaces, so a word is never split: a PCI address, a
//! path or a kernel parameter stays whole, on a line of its own when it is
//! longer than the line. Commands are not wrapped at all (the caller
//! prints each on its own line), nor are tables. Widths count characters,
//! not the ANSI colour sequences around them.

use std::io::{self, IsTerminal};

/// The fewest columns wrapping goes down to: below it every word would sit
/// on a line of its own.
pub const MIN_WIDTH: usize = 20;

/// The width to wrap to: `--width` when given, else the terminal's
/// (`COLUMNS`, then the window size) when standard output is one; None
/// (no wrapping) when it is piped or redirected.
pub fn resolve(flag: Option<usize>, to_stdout: bool) -> Option<usize> {
    if let Some(w) = flag {
        return Some(w.max(MIN_WIDTH));
    }
    if !to_stdout || !std::io::stdout().is_terminal() {
        return None;
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| {
            rustix::termios::tcgetwinsize(std::io::stdout())
                .ok()
                .map(|w| usize::from(w.ws_col))
                .filter(|&c| c > 0)
        })
        .map(|w| w.max(MIN_WIDTH))
}

/// Characters shown, without ANSI escape sequences (`ESC [ ... m`).
pub fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the sequence's final byte (a letter).
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

/// `text` as lines of at most `width` visible characters: the first starts
/// with `first`, the others with `rest` (an indent). None wraps nothing:
/// one line, `first` + `text`.
pub fn wrap(text: &str, width: Option<usize>, first: &str, rest: &str) -> Vec<String> {
    let Some(width) = width else {
        return vec![format!("{first}{text}")];
    };
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut len = visible_width(first);
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = visible_width(word);
        if !empty && len + 1 + w > width {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            len = visible_width(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
            len += 1;
        }
        line.push_str(word);
        len += w;
        empty = false;
    }
    lines.push(line);
    lines
}

/// Put first on a line that must not be wrapped (a command, a table row);
/// [`Wrapper`] removes it.
pub const NOWRAP: char = '\u{e000}';

/// A writer that wraps each line longer than the width at its spaces, the
/// continuation indented two columns past the line's own indent; lines
/// that start with [`NOWRAP`] pass whole (the mark removed). Sits below
/// `style::TerminalSafe`, so it sees the real colour sequences and does not
/// count them.
pub struct Wrapper<'a> {
    inner: &'a mut dyn io::Write,
    width: Option<usize>,
    line: Vec<u8>,
}

impl<'a> Wrapper<'a> {
    pub fn new(inner: &'a mut dyn io::Write, width: Option<usize>) -> Self {
        Wrapper {
            inner,
            width,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) -> io::Result<()> {
        let raw = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&raw);
        let mark = NOWRAP.to_string();
        if let Some(rest) = text.strip_prefix(&mark) {
            return self.inner.write_all(rest.as_bytes());
        }
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let newline = if body.len() < text.len() { "\n" } else { "" };
        if self.width.is_none_or(|w| visible_width(body) <= w) {
            return self.inner.write_all(text.as_bytes());
        }
        let indent: String = body.chars().take_while(|c| *c == ' ').collect();
        let rest = format!("{indent}  ");
        let lines = wrap(&body[indent.len()..], self.width, &indent, &rest);
        let joined = lines.join("\n");
        self.inner.write_all(joined.as_bytes())?;
        self.inner.write_all(newline.as_bytes())
    }
}

impl io::Write for Wrapper<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..=i]);
            self.emit()?;
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.emit()?;
        }
        self.inner.flush()
    }
}

impl Drop for Wrapper<'_> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            let _ = self.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_at_spaces_only() {
        let text =
            "the pair 0000:00:01.0 → 0000:02:00.0 crosses /sys/bus/pci/devices/0000:00:01.0 today";
        let lines = wrap(text, Some(24), "  fix: ", "       ");
        for l in &lines {
            assert!(
                visible_width(l) <= 24 || !l.trim().contains(' '),
                "{l:?} is too long and breakable"
            );
        }
        assert!(
            lines
                .iter()
                .any(|l| l.trim() == "/sys/bus/pci/devices/0000:00:01.0")
        );
        let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        let want: Vec<&str> = format!("fix: {text}").leak().split_whitespace().collect();
        assert_eq!(words, want, "nothing lost, nothing split");
        assert!(lines[0].starts_with("  fix: "));
        assert!(lines[1..].iter().all(|l| l.starts_with("       ")));
    }

    #[test]
    fn no_width_is_one_line_and_colour_is_not_counted() {
        assert_eq!(wrap("a b c", None, "> ", "  "), ["> a b c"]);
        assert_eq!(visible_width("\u{1b}[32mfix:\u{1b}[0m"), 4);
        assert_eq!(
            wrap("\u{1b}[1mabc\u{1b}[0m def", Some(7), "", ""),
            ["\u{1b}[1mabc\u{1b}[0m def"]
        );
        assert_eq!(resolve(Some(5), false), Some(MIN_WIDTH));
        assert_eq!(resolve(None, false), None);
    }

    #[test]
    fn the_writer_wraps_long_lines_and_keeps_marked_ones() {
        use std::io::Write;
        let mut out = Vec::new();
        {
            let mut w = Wrapper::new(&mut out, Some(20));
            write!(w, "  short\n  one two three four five six\n").unwrap();
            writeln!(
                w,
                "{NOWRAP}    sudo setpci -s 0000:00:03.0 ECAP_ACS+6.w=0000:002c"
            )
            .unwrap();
            write!(w, "tail").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  short\n  one two three four\n    five six\n    sudo setpci -s 0000:00:03.0 ECAP_ACS+6.w=0000:002c\ntail"
        );
    }
}
