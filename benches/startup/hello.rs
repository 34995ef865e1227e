//! The yardstick for dealhook's cold start (`scripts/measure-startup`), not shipped: the smallest
//! `lambda_runtime` function (the crate's own hello-world), built with the same release profile and
//! started under the same Runtime API emulator, so that what dealhook adds on top is what remains.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, lambda_runtime::Error>(json!({ "statusCode": 200, "body": event.context.request_id }))
    }))
    .await
}
