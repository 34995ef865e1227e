//! The Lambda function behind API Gateway / function URLs: wiring only; the pipeline lives in the library.
//! The raw event goes to the library (`App::handle_event`), which reads it with fallible code: no event can
//! make this process panic or leave an invocation unanswered.

use std::convert::Infallible;
use std::process::ExitCode;

use dealhook::config;
use dealhook::inbound::Invocation;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use serde_json::value::RawValue;

/// mimalloc: a delivery is mostly short-lived allocations, which glibc's malloc serves slowly (see
/// Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    dealhook::telemetry::init();
    // Built once per cold start: SDK clients, secret cache, HubSpot client, compiled mapping. A bad
    // configuration is logged once, as JSON, by `lambda_app`.
    let Some(app) = config::lambda_app("dealhook").await else {
        return ExitCode::FAILURE;
    };
    let app = &app;
    // The event as raw JSON text: any JSON the runtime hands over reaches the library, which answers it.
    let served = lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        let invocation = Invocation::from_lambda(&event.context);
        let (_, response) = app.answer_event_text(event.payload.get(), &invocation).await;
        Ok::<Value, Infallible>(response)
    }))
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
