//! A one-line progress bar on standard error for transfers that take more
//! than a moment; silent when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the bar measures against.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    Bytes(u64),
    Time(Duration),
}

pub struct Bar {
    label: String,
    goal: Goal,
    start: Instant,
    enabled: bool,
    shown: Mutex<bool>,
}

/// Shown only after this long, so short runs print nothing.
const GRACE: Duration = Duration::from_millis(400);

impl Bar {
    pub fn new(label: &str, goal: Goal, enabled: bool) -> Bar {
        Bar {
            label: label.to_string(),
            goal,
            start: Instant::now(),
            enabled: enabled && std::io::stderr().is_terminal(),
            shown: Mutex::new(false),
        }
    }

    /// Redraws with `done` bytes moved.
    pub fn update(&self, done: u64) {
        if !self.enabled {
            return;
        }
        let el = self.start.elapsed();
        if el < GRACE {
            return;
        }
        let rate = done as f64 / el.as_secs_f64();
        let frac = match self.goal {
            Goal::Bytes(total) => done as f64 / total.max(1) as f64,
            Goal::Time(d) => el.as_secs_f64() / d.as_secs_f64().max(1e-9),
        }
        .clamp(0.0, 1.0);
        let width = 24;
        let filled = (frac * width as f64) as usize;
        let eta = if frac > 0.0 {
            el.as_secs_f64() * (1.0 - frac) / frac
        } else {
            0.0
        };
        let line = format!(
            "\r{:<10} [{}{}] {:>5.1}%  {:>10}  {:>11}  eta {:>4.0}s ",
            self.label,
            "#".repeat(filled),
            ".".repeat(width - filled),
            frac * 100.0,
            crate::units::human_bytes(done),
            crate::units::rate(rate / 1e9),
            eta
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        *self.shown.lock().unwrap() = true;
    }

    /// Clears the line if it was drawn.
    pub fn finish(&self) {
        if *self.shown.lock().unwrap() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{:80}\r", "");
            let _ = err.flush();
        }
    }
}
