//! The `stepgate` binary: everything lives in `stepgate-server`; this file only runs it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stepgate_server::cli::main()
}
