//! Times the AWS SDK's share of a cold start in one fresh process (release build; run it several
//! times, first-call cost is what matters). README "Size and cold start" has the command and figures.
//!
//! `startup-sdk default` loads the config as dealhook does (`aws::load_sdk_config`: the SDK's default
//! chain); `startup-sdk lean` builds it from the variables Lambda sets (region and static
//! credentials, nothing else), to measure what the default chain itself costs. Then, for both:
//! building a Secrets Manager client, its first request (to a loopback port nobody listens on: setup,
//! signing and a refused connection), a second client's build and first request, and the first
//! client's second request. Prints milliseconds.

use std::time::Instant;

use aws_sdk_secretsmanager::config::retry::RetryConfig;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn client(sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// The configuration from `AWS_REGION` and the key variables alone, with dealhook's timeouts and retries.
fn lean() -> aws_config::SdkConfig {
    let region = std::env::var("AWS_REGION").unwrap_or_default();
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .timeout_config(dealhook::aws::timeout_config())
        .retry_config(dealhook::aws::retry_config())
        .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
        .time_source(aws_smithy_async::time::SharedTimeSource::default())
        .build()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let start = Instant::now();
    let sdk = match mode.as_str() {
        "default" => dealhook::aws::load_sdk_config().await,
        "lean" => lean(),
        _ => {
            eprintln!("usage: startup-sdk default|lean");
            std::process::exit(2);
        }
    };
    let config_ms = ms(start);

    let start = Instant::now();
    let first = client(&sdk);
    let client_ms = ms(start);
    let start = Instant::now();
    let refused = first.get_secret_value().secret_id("x").send().await.is_err();
    let first_request_ms = ms(start);
    let start = Instant::now();
    let _ = client(&sdk).get_secret_value().secret_id("x").send().await;
    let second_client_ms = ms(start);
    let start = Instant::now();
    let _ = first.get_secret_value().secret_id("x").send().await;
    let again_ms = ms(start);

    println!(
        "{mode} config_ms {config_ms:.2} client_ms {client_ms:.2} first_request_ms {first_request_ms:.2} \
         second_client_and_request_ms {second_client_ms:.2} same_client_again_ms {again_ms:.2} refused {refused}"
    );
}
