//! One module per subcommand; each turns arguments into library calls.

mod bootstrap;
mod cacerts;
mod check;
mod controller;
mod crd;
mod demo;
mod expose;
mod inspect;
pub(crate) mod issue;
mod link;
mod push;
mod root;
mod status;
mod values;
mod verify;

use std::process::ExitCode;

use crate::args::{Args, Command, RootCommand};

/// Runs the parsed command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Root(RootCommand::Create(a)) => root::create(a),
        Command::Cacerts(a) => cacerts::run(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::Inspect(a) => inspect::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Push(a) => push::run(a).await,
        Command::Bootstrap(a) => bootstrap::run(a).await,
        Command::Values(a) => values::run(a),
        Command::Expose(a) => expose::run(a).await,
        Command::Link(a) => link::run(a).await,
        Command::Check(a) => check::run(a).await,
        Command::Controller(a) => controller::run(a).await,
        Command::Crd => crd::run(),
        Command::Status(a) => status::run(a).await,
    }
}
