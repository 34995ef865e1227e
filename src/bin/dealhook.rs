//! The `dealhook` CLI: wiring only; the commands live in `dealhook::cli`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dealhook::cli::main().await
}
