//! The example app as a binary. Settings come from the environment:
//!
//! - `STEPGATE_URL`: where stepgate answers (default `http://127.0.0.1:8080`);
//! - `STEPGATE_API_KEY`: a `service` API key (`stepgate api-keys create --scope service`);
//! - `LISTEN`: the socket address to listen on (default `127.0.0.1:3000`).

use std::process::ExitCode;

use stepgate_example::{Config, serve};

#[tokio::main]
async fn main() -> ExitCode {
    let url = std::env::var("STEPGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let Ok(api_key) = std::env::var("STEPGATE_API_KEY") else {
        eprintln!(
            "set STEPGATE_API_KEY to a service API key (stepgate api-keys create --scope service)"
        );
        return ExitCode::FAILURE;
    };
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let config = match Config::connect(&url, &api_key).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot read stepgate's keys at {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("example app listening on http://{addr} (stepgate at {url})"),
        Err(e) => eprintln!("listening, address unknown: {e}"),
    }
    if let Err(e) = serve(listener, config).await {
        eprintln!("serving failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
