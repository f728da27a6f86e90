//! Colour for human output, honouring `--color` and `NO_COLOR`.

use anstyle::{AnsiColor, Style};

/// Paints strings when colour is on; passes them through otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    pub enabled: bool,
}

impl Painter {
    pub fn paint(&self, style: Style, s: &str) -> String {
        if self.enabled && !s.is_empty() {
            format!("{}{s}{}", style.render(), style.render_reset())
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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
