//! The `rollback` Lambda function: configuration and clients once, then the runtime loop.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rollback::event::EventError;
use rollback::{invoke, Clients, Config, Deadline, RollbackError};
use shiftguard_common::init_trace::mark;
use shiftguard_common::RawEvent;

fn main() -> Result<(), lambda_runtime::Error> {
    mark("main");
    let runtime = shiftguard_common::runtime()?;
    mark("runtime");
    runtime.block_on(serve())
}

async fn serve() -> Result<(), lambda_runtime::Error> {
    shiftguard_common::prefer_ca_bundle();
    shiftguard_common::init_logging();
    mark("logging");
    // A bad configuration is logged at start-up and then answers every invocation with the same
    // error, so that it shows in the invocation result and the on-failure destination instead of
    // as an anonymous runtime exit.
    let config = Config::from_env().inspect_err(|e| {
        tracing::error!(variable = %e.variable, error = %e, "invalid configuration");
    });
    mark("config");
    let sdk = shiftguard_common::aws_config().await;
    mark("sdk-config");
    let clients = Clients::for_config(&sdk, config.as_ref().ok());
    mark("clients");
    let (clients, config) = (&clients, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RawEvent>| async move {
        let config = config
            .as_ref()
            .map_err(|e| RollbackError::BadConfig(e.to_string()))?;
        let payload = match event.payload {
            RawEvent::Json(v) => v,
            RawEvent::Invalid(e) => {
                return Err(RollbackError::BadEvent(EventError::NotJson(e)).into())
            }
        };
        clients.learn_home(&event.context.invoked_function_arn);
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        let own = Some(event.context.invoked_function_arn.clone());
        // Through Diagnostic: the errorType is the documented one (Rollback.*), not a type name.
        invoke(clients, config, &payload, deadline, own)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
