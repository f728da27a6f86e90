//! Ctrl-C, SIGTERM and SIGHUP during a confirm: the engine stops issuing
//! requests, lets the ones in flight finish, and the caller restores what
//! it wrote before exiting.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Catches SIGINT, SIGTERM and SIGHUP from now on (idempotent). The handler
/// (signal-hook's, installed with SA_RESTART) only sets the flag.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // Fails only for signals that cannot be caught (SIGKILL,
            // SIGSTOP); these three always can be.
            if let Err(e) = signal_hook::flag::register(sig, &INTERRUPTED) {
                eprintln!("p2pdoctor: cannot catch signal {sig}: {e}; Ctrl-C will not restore");
            }
        }
    });
}

/// Whether a stop was asked for.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// The exit status for an interrupted run (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;
