//! `meshtrust agent`: thin wiring over `meshtrust_agent`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use meshtrust_agent::{Agent, AgentConfig, Metrics, Settings};
use meshtrust_issuer::Clock;
use meshtrust_kube::leader::LeaseConfig;

use crate::args::{AgentArgs, ForeignCacerts};

pub async fn run(args: AgentArgs) -> Result<ExitCode> {
    crate::logging::init(args.log_format, "info,kube=warn");
    let mut server = args.server.config()?;
    server.timeout = args.server_timeout;
    let issuer = meshtrust_issuer::server_issuer(server)?;
    let client = args.kube.access().client(args.context.as_deref()).await?;
    let clock = clock(&args);
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .unwrap_or_else(|_| format!("meshtrust-agent-{}", std::process::id()))
    });
    let mut lease = LeaseConfig::new(args.namespace.clone(), identity);
    lease.name = args.lease_name.clone();
    lease.lease_duration = args.lease_duration;
    lease.renew_deadline = args.renew_deadline;
    lease.retry_period = args.retry_period;
    let metrics = Arc::new(Metrics::new(clock.clone()));
    let agent = Agent::new(client, issuer, config(&args), clock, metrics);
    let settings = Settings {
        listen: args.listen,
        lease,
    };
    meshtrust_agent::run(
        Arc::new(agent),
        settings,
        meshtrust_controller::shutdown_signal(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

fn config(args: &AgentArgs) -> AgentConfig {
    let mut config = AgentConfig::new(args.cluster.clone());
    config.namespace = args.namespace.clone();
    config.istiod = args.istiod_deployment.clone();
    config.credential_file = args
        .token_file
        .clone()
        .or_else(|| args.service_account_token_file.clone());
    config.foreign = match args.foreign_cacerts {
        ForeignCacerts::Backup => meshtrust_agent::ForeignCacerts::Backup,
        ForeignCacerts::Refuse => meshtrust_agent::ForeignCacerts::Refuse,
    };
    config.key_type = args.key_type;
    config.report_every = args.report_every;
    config.backoff = meshtrust_ca::Backoff {
        base: args.backoff_base,
        cap: args.backoff_cap,
    };
    config.jitter_percent = args.jitter_percent;
    config
}

/// The agent's clock: the system's, or — in test builds only — one moved by a file.
fn clock(args: &AgentArgs) -> Clock {
    #[cfg(feature = "test-clock")]
    if let Some(path) = &args.clock_offset_file {
        return Clock::offset_file(path);
    }
    let _ = args;
    Clock::system()
}
