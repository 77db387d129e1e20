//! The one place that chooses a kind's execution for a check: [`Executor`] and the real executor's
//! dispatch over [`CheckKind`] (pre-traffic and post-traffic `compare` differ).

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{AwsExecutor, Observation};
use crate::config::{Check, CheckKind};
use crate::Phase;

/// Runs one attempt of a check. A trait so that tests can wrap the real executor (to make a check
/// panic, for instance) while everything else stays real.
pub trait Executor: Send + Sync {
    fn run(&self, check: Check) -> BoxFuture<'static, Observation>;
}

impl Executor for AwsExecutor {
    fn run(&self, check: Check) -> BoxFuture<'static, Observation> {
        let this = self.clone();
        async move {
            match &check.kind {
                CheckKind::Invoke(c) => this.invoke(c).await,
                CheckKind::Http(c) => this.http(c).await,
                CheckKind::Burst(c) => this.burst(c).await,
                CheckKind::Metrics(c) => this.metrics(c).await,
                CheckKind::Compare(c) => match this.phase {
                    Phase::PreTraffic => this.compare_load(c).await,
                    Phase::PostTraffic => this.compare_series(c).await,
                },
                CheckKind::Logs(c) => this.logs(c).await,
                CheckKind::Artifact(c) => this.artifact(c).await,
            }
        }
        .boxed()
    }
}
