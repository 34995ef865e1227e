//! The `dealhook` CLI: wiring only; the commands live in `dealhook::cli`.

/// mimalloc: a delivery is mostly short-lived allocations, which glibc's malloc serves slowly (see
/// Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dealhook::cli::main().await
}
