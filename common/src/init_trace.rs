//! Start-up timestamps for `make bench`'s breakdown of init (feature `init-trace`, off in every
//! build that ships: there [`mark`] is an empty inline function). With the feature, each mark is
//! one line on stderr, `shiftguard-init STEP MICROSECONDS` (wall clock, so that the bench can
//! subtract the time it spawned the process).

/// Notes that start-up reached `step`.
#[cfg(feature = "init-trace")]
pub fn mark(step: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!("shiftguard-init {step} {}", now.as_micros());
}

/// Notes that start-up reached `step` (compiled out: the feature `init-trace` is off).
#[cfg(not(feature = "init-trace"))]
#[inline(always)]
pub fn mark(_step: &str) {}
