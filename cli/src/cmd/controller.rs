//! `meshtrust controller`: thin wiring over `meshtrust_controller`.

use std::process::ExitCode;

use anyhow::Result;
use meshtrust_ca::Backoff;
use meshtrust_controller::leader::LeaseConfig;
use meshtrust_controller::{Context, Settings, recorder};
use meshtrust_issuer::Clock;

use crate::args::ControllerArgs;

pub async fn run(args: ControllerArgs) -> Result<ExitCode> {
    crate::logging::init(args.log_format, "info,kube=warn");
    let access = args.kube.access();
    let client = access.client(args.context.as_deref()).await?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("meshtrust-{}", std::process::id()))
    });
    let mut lease = LeaseConfig::new(args.namespace.clone(), identity.clone());
    lease.name = args.lease_name.clone();
    lease.lease_duration = args.lease_duration;
    lease.renew_deadline = args.renew_deadline;
    lease.retry_period = args.retry_period;
    let mut context = Context::new(
        client.clone(),
        args.namespace.clone(),
        clock(&args),
        Backoff {
            base: args.backoff_base,
            cap: args.backoff_cap,
        },
        args.resync,
        args.kube.request_timeout,
        recorder(&client, &identity),
    );
    context.member_budget = args.kube.cluster_timeout;
    meshtrust_controller::run(Settings::new(client, args.listen, lease, context)).await?;
    Ok(ExitCode::SUCCESS)
}

/// The controller's clock: the system's, or — in test builds only — one moved by a file.
fn clock(args: &ControllerArgs) -> Clock {
    #[cfg(feature = "test-clock")]
    if let Some(path) = &args.clock_offset_file {
        return Clock::offset_file(path);
    }
    let _ = args;
    Clock::system()
}
