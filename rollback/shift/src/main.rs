//! The `shift` Lambda function: one step of a progressive rollout per invocation. Configuration
//! and clients once, then the runtime loop.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rollback::Deadline;
use shift::{handle_shift, ShiftClients, ShiftConfig, ShiftError};
use shiftguard_common::env::EnvError;
use shiftguard_common::init_trace::mark;
use shiftguard_common::RawEvent;

fn main() -> Result<(), lambda_runtime::Error> {
    shiftguard_common::main(ShiftConfig::from_env, |config, sdk| async move {
        let clients = ShiftClients::new(&sdk);
        mark("clients");
        serve(&clients, &config).await
    })
}

/// The runtime loop; a bad configuration answers every invocation with the same error (see
/// rollback's main).
async fn serve(
    clients: &ShiftClients,
    config: &Result<ShiftConfig, EnvError>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RawEvent>| async move {
        let config = config
            .as_ref()
            .map_err(|e| ShiftError::InvalidPlan(format!("invalid configuration: {e}")))?;
        let payload = match event.payload {
            RawEvent::Json(v) => v,
            RawEvent::Invalid(e) => {
                return Err(ShiftError::InvalidPlan(format!("the event is not JSON: {e}")).into())
            }
        };
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        let summary = handle_shift(clients, config, &payload, deadline).await?;
        serde_json::to_value(summary).map_err(|e| Diagnostic {
            error_type: "Shift.Internal".into(),
            error_message: format!("the summary could not be serialised: {e}"),
        })
    }))
    .await
}
