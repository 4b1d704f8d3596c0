//! Progress lines on stderr while the benchmark runs, stamped with the time since it started.

use std::sync::OnceLock;
use std::time::Instant;

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Prints one progress line: `[bench 123.4s] message`.
pub fn say(message: impl AsRef<str>) {
    eprintln!(
        "[bench {:7.1}s] {}",
        start().elapsed().as_secs_f64(),
        message.as_ref()
    );
}
