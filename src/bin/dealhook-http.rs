//! The Lambda function behind API Gateway / function URLs: wiring only; the pipeline lives in the library.
//! The raw event goes to the library (`App::handle_event`), which reads it with fallible code: no event can
//! make this process panic or leave an invocation unanswered.

use std::convert::Infallible;

use dealhook::config::{self, Env, Mode};
use dealhook::inbound::Invocation;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dealhook::telemetry::init();
    // Built once per cold start: SDK clients, secret cache, HubSpot client, compiled mapping.
    let (app, _, _) = config::build_app(&Env::from_process()?, Mode::Lambda)
        .await
        .inspect_err(|e| {
            tracing::error!(error = %e, "dealhook cannot start: configuration is invalid");
        })?;
    let app = &app;
    // The event as raw JSON text: any JSON the runtime hands over reaches the library, which answers it.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        let invocation = Invocation::from_lambda(&event.context);
        let (_, response) = app.answer_event_text(event.payload.get(), &invocation).await;
        Ok::<Value, Infallible>(response)
    }))
    .await
}
