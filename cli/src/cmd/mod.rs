//! One module per subcommand; each turns arguments into library calls.

mod agent;
mod bootstrap;
mod cacerts;
mod check;
mod completions;
mod controller;
mod crd;
mod demo;
mod expose;
mod inspect;
mod inventory;
mod issue;
mod link;
mod man;
mod push;
mod renew;
mod report;
mod root;
mod rotate;
mod serve;
mod status;
mod values;
mod verify;

use std::process::ExitCode;

use meshtrust_issuer::Clock;

use crate::args::{Args, Command, RootCommand, RotateCommand};

/// Runs the parsed command, reading time from the system clock (the controller builds its
/// own clock from its arguments).
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let clock = Clock::system();
    match args.command {
        Command::Root(RootCommand::Create(a)) => root::create(a, &clock),
        Command::Cacerts(a) => cacerts::run(a, &clock).await,
        Command::Demo(a) => demo::run(a, &clock).await,
        Command::Inspect(a) => inspect::run(a, &clock),
        Command::Verify(a) => verify::run(a, &clock),
        Command::Push(a) => push::run(a, &clock).await,
        Command::Bootstrap(a) => bootstrap::run(a, &clock).await,
        Command::Values(a) => values::run(a),
        Command::Expose(a) => expose::run(a).await,
        Command::Link(a) => link::run(a).await,
        Command::Check(a) => check::run(a).await,
        Command::Controller(a) => controller::run(a).await,
        Command::Crd => crd::run(),
        Command::Status(a) => status::run(a, &clock).await,
        Command::Renew(a) => renew::run(a, &clock).await,
        Command::Rotate(RotateCommand::Start(a)) => rotate::start(a, &clock).await,
        Command::Rotate(RotateCommand::Status(a)) => rotate::status(a).await,
        Command::Rotate(RotateCommand::Finish(a)) => rotate::finish(a).await,
        Command::Serve(a) => serve::run(a, &clock).await,
        Command::Agent(a) => agent::run(a).await,
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a, &clock),
    }
}
