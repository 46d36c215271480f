//! The `meshtrust` binary: parse arguments, hand off, map the outcome to an exit code.
#![forbid(unsafe_code)]

mod advice;
mod args;
mod cmd;
mod logging;
mod output;
mod write;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    // kube (ring) and the AWS SDK (aws-lc-rs) both enable rustls providers; without one
    // process-wide choice, kube::Client panics. The AWS SDK picks its own explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(cmd::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}{}", advice::for_chain(&e));
            ExitCode::FAILURE
        }
    }
}
