//! Where the commands print: standard output that a closed pipe (`| head`) silences
//! instead of panicking, notes on standard error that `--quiet` silences, and the colour
//! decision (`--color`, NO_COLOR). Set once by `main`, read by every command.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
static COLOUR: AtomicBool = AtomicBool::new(false);
/// The reader of standard output has gone: everything after is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

pub fn configure(quiet: bool, colour: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    COLOUR.store(colour, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

pub fn colour() -> bool {
    COLOUR.load(Ordering::Relaxed)
}

/// Writes `text` to standard output. A reader that went away (EPIPE: `| head -1`) is not
/// an error: the rest is dropped and the command ends with its own exit status. Any
/// other failure (a full disk behind a redirection) is.
pub fn out(text: &str) -> std::io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// `text` and a newline on standard output (see [`out`]).
pub fn line(text: &str) -> std::io::Result<()> {
    out(&format!("{text}\n"))
}

/// A note for people on standard error (progress, summaries, warnings), unless --quiet.
/// Never fails: a closed standard error loses the note, nothing else.
pub fn note(text: &str) {
    if !quiet() {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// An error on standard error, --quiet or not.
pub fn error(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
