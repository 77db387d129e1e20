//! The invocation deadline, and running work within it. Every step asks how much time is left
//! *now*, so that a slow call early on shrinks what later steps may spend instead of pushing the
//! whole invocation past Lambda's timeout (where the runtime kills it and the record is lost).

use std::future::Future;
use std::time::{Duration, Instant};

/// When the invocation must have answered; `None` when there is no deadline (tests, local runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(pub Option<Instant>);

/// The work did not finish before its share of the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("out of time: stopped {} ms before the Lambda deadline", margin.as_millis())]
pub struct OutOfTime {
    pub margin: Duration,
}

impl Deadline {
    pub fn after(d: Duration) -> Self {
        Deadline(Instant::now().checked_add(d))
    }

    /// The deadline the Lambda runtime gives, in milliseconds since the Unix epoch. No deadline
    /// when it is not in the future: Lambda always gives a future one, but local Runtime API
    /// emulators may not (cargo-lambda 1.9 sends the timeout, 600000, instead), and a past deadline
    /// taken at its word would end every invocation at once.
    pub fn from_epoch_ms(deadline_ms: u64) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        if deadline_ms <= now_ms {
            tracing::warn!(
                deadline_ms,
                now_ms,
                "the runtime gave no usable deadline; running without one"
            );
            return Deadline(None);
        }
        Deadline::after(Duration::from_millis(deadline_ms - now_ms))
    }

    /// The moment `margin` before the deadline (now, if that has passed).
    pub fn less(&self, margin: Duration) -> Option<Instant> {
        let now = Instant::now();
        self.0
            .map(|d| d.checked_sub(margin).filter(|at| *at > now).unwrap_or(now))
    }

    /// Time left before `margin` ahead of the deadline; `None` without a deadline.
    pub fn left(&self, margin: Duration) -> Option<Duration> {
        self.0.map(|d| {
            d.saturating_duration_since(Instant::now())
                .saturating_sub(margin)
        })
    }

    /// `want`, or less if the deadline (less `margin`) comes first.
    pub fn cap(&self, want: Duration, margin: Duration) -> Duration {
        self.left(margin).map_or(want, |left| want.min(left))
    }

    /// Runs `work`, giving up `margin` before the deadline.
    pub async fn within<F: Future>(
        &self,
        margin: Duration,
        work: F,
    ) -> Result<F::Output, OutOfTime> {
        match self.less(margin) {
            None => Ok(work.await),
            Some(at) => tokio::time::timeout_at(at.into(), work)
                .await
                .map_err(|_| OutOfTime { margin }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_past_or_absurd_deadline_is_no_deadline_and_never_panics() {
        assert_eq!(Deadline::from_epoch_ms(600_000), Deadline(None));
        assert_eq!(Deadline::from_epoch_ms(0), Deadline(None));
        // Far in the future: Instant arithmetic must not overflow.
        let _ = Deadline::from_epoch_ms(u64::MAX);
        let d = Deadline::after(Duration::MAX);
        let _ = d.left(Duration::MAX);
        let _ = d.less(Duration::MAX);
    }

    #[test]
    fn time_left_shrinks_by_the_margin() {
        let d = Deadline::after(Duration::from_secs(10));
        let left = d.left(Duration::from_secs(4)).unwrap();
        assert!(left <= Duration::from_secs(6) && left > Duration::from_secs(5));
        assert_eq!(d.left(Duration::from_secs(20)), Some(Duration::ZERO));
        assert_eq!(
            Deadline::default().cap(Duration::from_secs(3), Duration::ZERO),
            Duration::from_secs(3)
        );
        assert!(d.cap(Duration::from_secs(30), Duration::from_secs(4)) <= Duration::from_secs(6));
    }

    #[tokio::test]
    async fn work_past_the_margin_is_stopped() {
        let d = Deadline::after(Duration::from_millis(300));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        let started = Instant::now();
        assert!(d.within(Duration::from_millis(200), slow).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!(d.within(Duration::ZERO, async { 7 }).await, Ok(7));
    }
}
