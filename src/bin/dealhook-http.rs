//! The Lambda function behind API Gateway / function URLs: wiring only; the pipeline lives in the library.

use dealhook::config::{self, Env, Mode};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    dealhook::telemetry::init();
    // Built once per cold start: SDK clients, secret cache, HubSpot client, compiled mapping.
    let (app, _, _) = config::build_app(&Env::from_process()?, Mode::Lambda)
        .await
        .inspect_err(|e| {
            tracing::error!(error = %e, "dealhook cannot start: configuration is invalid");
        })?;
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |request| app.handle_http(request))).await
}
