//! `meshtrust crd`: the MeshTrust CustomResourceDefinition, generated from the Rust types.

use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    print!("{}", meshtrust_controller::crd::crd_yaml());
    Ok(ExitCode::SUCCESS)
}
