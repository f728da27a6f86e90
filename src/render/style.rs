//! Colour for human output, honouring `--color` and `NO_COLOR`, and the
//! one place that makes text output safe for a terminal.
//!
//! Text output carries strings from the machine or a snapshot someone sent
//! (host name, kernel command line, driver names, kernel-log lines,
//! directory names). A control character in one (`ESC]0;…BEL` retitles a
//! terminal, `ESC[2J` clears it) must reach the terminal as text, the way
//! `ls` and `git` quote names: every text renderer writes through
//! [`TerminalSafe`], which writes `\x1b` for ESC. Our own colours pass: the
//! [`Painter`] marks them with a per-process random tag that no input can
//! know, and only a marked sequence becomes an escape again.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};

/// The tag that stands for ESC in the Painter's sequences until
/// [`TerminalSafe`] writes them: a noncharacter and 128 random bits.
fn color_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let random = || {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        format!("\u{fdd0}{:016x}{:016x}", random(), random())
    })
}

/// A style's start and reset, with ESC as the tag.
fn tagged(style: Style) -> (String, String) {
    let tag = color_tag();
    (
        style.render().to_string().replace('\x1b', tag),
        style.render_reset().to_string().replace('\x1b', tag),
    )
}

/// Whether `c` is shown escaped: C0 controls but newline and tab, DEL, C1
/// controls, and the bidirectional overrides and isolates (which reorder
/// what a terminal shows).
fn must_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character written as `\xNN` (`\u{NNNN}` above
/// 0xff), as `git` and `ls` quote names. Newlines and tabs stay.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(must_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !must_escape(c) {
            out.push(c);
        } else if (c as u32) <= 0xff {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// A writer for text output: control characters in what passes are
/// escaped ([`escape_controls`]), except the Painter's own tagged colour
/// sequences, which become real escapes. Renderers write whole strings
/// (one `write` per formatted piece), so a piece is escaped as a string;
/// bytes that are not UTF-8 are written as `\xNN` too.
pub struct TerminalSafe<'a> {
    inner: &'a mut dyn Write,
}

impl<'a> TerminalSafe<'a> {
    pub fn new(inner: &'a mut dyn Write) -> Self {
        TerminalSafe { inner }
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        let tag = color_tag();
        let mut parts = text.split(tag);
        if let Some(first) = parts.next() {
            self.inner.write_all(escape_controls(first).as_bytes())?;
        }
        for part in parts {
            self.inner.write_all(b"\x1b")?;
            self.inner.write_all(escape_controls(part).as_bytes())?;
        }
        Ok(())
    }
}

impl Write for TerminalSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.write_text(text)?;
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // `good` is valid UTF-8: from_utf8 said so.
                    self.write_text(std::str::from_utf8(good).unwrap_or_default())?;
                    let n = e.error_len().unwrap_or(bad.len()).max(1);
                    for b in &bad[..n] {
                        write!(self.inner, "\\x{b:02x}")?;
                    }
                    rest = &bad[n..];
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Paints strings when colour is on; passes them through otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    pub enabled: bool,
}

impl Painter {
    /// `s` in `style`: the sequences are tagged (see [`TerminalSafe`]), so
    /// the result must be written through one.
    pub fn paint(&self, style: Style, s: &str) -> String {
        if self.enabled && !s.is_empty() {
            let (start, reset) = tagged(style);
            format!("{start}{s}{reset}")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint(Style::new().bold(), s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.paint(Style::new().dimmed(), s)
    }

    pub fn warn(&self, s: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), s)
    }

    pub fn bad(&self, s: &str) -> String {
        self.paint(AnsiColor::Red.on_default().bold(), s)
    }

    pub fn good(&self, s: &str) -> String {
        self.paint(AnsiColor::Green.on_default(), s)
    }

    pub fn accent(&self, s: &str) -> String {
        self.paint(AnsiColor::Cyan.on_default(), s)
    }
}

/// When to colour, as `--color` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal and NO_COLOR is unset.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Decides for standard output. `NO_COLOR` (any non-empty value) turns
    /// `auto` off, per no-color.org; `always` still wins.
    pub fn resolve(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                !no_color && std::io::IsTerminal::is_terminal(&std::io::stdout())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(s: &str) -> String {
        let mut out = Vec::new();
        TerminalSafe::new(&mut out).write_all(s.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn control_characters_are_escaped_and_our_colours_pass() {
        assert_eq!(escape_controls("plain\tand\n"), "plain\tand\n");
        assert_eq!(
            escape_controls("evil\x1b]0;pwned\x07\x1b[2J\u{9b}\u{202e}"),
            "evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b\\u{202e}"
        );
        let p = Painter { enabled: true };
        let painted = p.bold("ok");
        assert!(!painted.contains('\x1b'), "tagged until written");
        assert_eq!(through(&painted), "\x1b[1mok\x1b[0m");
        // A forged sequence (no tag) is text.
        assert_eq!(through("\x1b[1mno"), "\\x1b[1mno");
        let mut out = Vec::new();
        TerminalSafe::new(&mut out).write_all(b"a\xffb").unwrap();
        assert_eq!(out, b"a\\xffb");
    }
}
