//! Queue mode's worker: the Lambda function behind the work queue's event source mapping. Wiring only:
//! the library takes each SQS batch (`App::handle_sqs_event`) and answers the partial batch response
//! (`ReportBatchItemFailures`). An event that is not an SQS batch is answered with every message it
//! names as failed, never with a panic.

use std::process::ExitCode;

use dealhook::config;
use dealhook::inbound::Invocation;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// mimalloc: a delivery is mostly short-lived allocations, which glibc's malloc serves slowly (see
/// Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    dealhook::telemetry::init();
    // Built once per cold start: the same app as the HTTP function, with the work queue. A bad
    // configuration is logged once, as JSON, by `lambda_app`.
    let Some(app) = config::lambda_app("dealhook-worker").await else {
        return ExitCode::FAILURE;
    };
    let app = &app;
    let served = lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation::from_lambda(&event.context);
        app.handle_sqs_value(event.payload, &invocation)
            .await
            .map_err(lambda_runtime::Error::from)
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
