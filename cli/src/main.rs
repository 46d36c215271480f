//! The `meshtrust` binary: parse arguments, hand off, map the outcome to an exit code.
#![forbid(unsafe_code)]

mod args;
mod cmd;
mod duration;
mod output;
mod write;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(cmd::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
