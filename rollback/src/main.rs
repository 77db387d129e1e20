//! The `rollback` Lambda function: configuration and clients once, then the runtime loop.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rollback::event::EventError;
use rollback::{invoke, Clients, Config, Deadline, RollbackError};
use shiftguard_common::env::EnvError;
use shiftguard_common::init_trace::mark;
use shiftguard_common::RawEvent;

fn main() -> Result<(), lambda_runtime::Error> {
    shiftguard_common::main(Config::from_env, |config, sdk| async move {
        let clients = Clients::for_config(&sdk, config.as_ref().ok());
        mark("clients");
        serve(&clients, &config).await
    })
}

/// The runtime loop. A bad configuration answers every invocation with the same error, so that
/// it shows in the invocation result and the on-failure destination instead of as an anonymous
/// runtime exit.
async fn serve(
    clients: &Clients,
    config: &Result<Config, EnvError>,
) -> Result<(), lambda_runtime::Error> {
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
