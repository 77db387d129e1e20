//! The `rollback` Lambda function: configuration and clients once, then the runtime loop.

use lambda_runtime::{service_fn, LambdaEvent};
use rollback::{handle, Clients, Config, Deadline};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shiftguard_common::prefer_ca_bundle();
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
        let deadline = Deadline(shiftguard_common::deadline_from_epoch_ms(
            event.context.deadline,
        ));
        let summary = handle(clients, config, &event.payload, deadline).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
    }))
    .await
}
