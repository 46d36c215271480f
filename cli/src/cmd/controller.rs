//! `meshtrust controller`: thin wiring over `crate::controller`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use meshtrust_ca::Backoff;

use crate::args::ControllerArgs;
use crate::controller::clock::Clock;
use crate::controller::leader::LeaseConfig;
use crate::controller::metrics::Metrics;
use crate::controller::reconcile::Context;
use crate::controller::run::{Settings, recorder, run as run_controller};
use crate::server::Health;

pub async fn run(args: ControllerArgs) -> Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
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
    let context = Context {
        client: client.clone(),
        namespace: args.namespace.clone(),
        clock: args
            .clock_offset_file
            .clone()
            .map_or(Clock::System, Clock::OffsetFile),
        backoff: Backoff {
            base: args.backoff_base,
            cap: args.backoff_cap,
        },
        resync: args.resync,
        member_timeout: args.kube.request_timeout,
        metrics: Arc::new(Metrics::default()),
        health: Arc::new(Health::default()),
        recorder: recorder(&client, &identity),
    };
    run_controller(Settings {
        client,
        listen: args.listen,
        lease,
        context,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
