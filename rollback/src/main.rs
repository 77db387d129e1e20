//! The `rollback` Lambda function: configuration and clients once, then the runtime loop.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, LambdaEvent};
use rollback::{handle, Clients, Config, Deadline};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiftguard_common::init_logging();
    // A bad configuration is logged at start-up and then answers every invocation with the same
    // error, so that it shows in the invocation result and the on-failure destination instead of
    // as an anonymous runtime exit.
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(variable = %e.variable, error = %e, "invalid configuration");
    });
    let clients = Clients::new(&shiftguard_common::aws_config().await);
    let (clients, config) = (&clients, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let config = config
            .as_ref()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        let deadline = deadline_of(&event.context);
        let summary = handle(clients, config, &event.payload, deadline).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
    }))
    .await
}

/// The invocation's deadline as an `Instant` (the runtime gives milliseconds since the epoch).
fn deadline_of(ctx: &lambda_runtime::Context) -> Deadline {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Deadline(
        (ctx.deadline > 0)
            .then(|| Instant::now() + Duration::from_millis(ctx.deadline.saturating_sub(now_ms))),
    )
}
