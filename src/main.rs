//! The `stepgate` binary: everything lives in `stepgate-server`; this file only runs it.

fn main() -> std::process::ExitCode {
    stepgate_server::cli::main()
}
