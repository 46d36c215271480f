//! `meshtrust serve`: thin wiring over `meshtrust_service` — the configuration from the
//! file and the flags, the audit sink, signals, and `serve token create`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use meshtrust_issuer::Clock;
use meshtrust_service::config::{IssuerSource, RotationSource};
use meshtrust_service::{AuditLog, ServeConfig, Server};

use crate::args::{Output, ServeArgs, ServeCommand, TokenCommand, TokenCreateArgs};
use crate::output;

pub async fn run(args: ServeArgs, clock: &Clock) -> Result<ExitCode> {
    #[cfg(feature = "test-clock")]
    let clock = &match &args.clock_offset_file {
        Some(path) => Clock::offset_file(path),
        None => clock.clone(),
    };
    match args.command {
        Some(ServeCommand::Token(TokenCommand::Create(a))) => token_create(a, clock).await,
        None => serve(args, clock).await,
    }
}

fn load(path: Option<&std::path::Path>) -> Result<ServeConfig> {
    Ok(match path {
        Some(p) => ServeConfig::from_file(p)?,
        None => ServeConfig::default(),
    })
}

/// The configuration file with every flag given laid over it.
fn config(args: &ServeArgs) -> Result<ServeConfig> {
    let mut config = load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.tls_cert.is_some() {
        config.tls.cert_file = args.tls_cert.clone();
        config.tls.key_file = args.tls_key.clone();
        config.tls.self_issued.clear();
    }
    if !args.tls_self_issued.is_empty() {
        config.tls.self_issued = args.tls_self_issued.clone();
        config.tls.cert_file = None;
        config.tls.key_file = None;
    }
    if args.root.is_some() {
        config.issuer.root_dir = args.root.clone();
        config.issuer.aws_pca_arn = None;
    }
    if args.ca_arn.is_some() {
        config.issuer.aws_pca_arn = args.ca_arn.clone();
        config.issuer.root_dir = None;
    }
    config.issuer.aws_region = args.region.clone().or(config.issuer.aws_region);
    config.issuer.aws_endpoint_url = args.endpoint_url.clone().or(config.issuer.aws_endpoint_url);
    rotation(args, &mut config);
    if let Some(store) = &args.store {
        config.store = store.clone();
    }
    if args.admin_token_file.is_some() {
        config.admin_token_file = args.admin_token_file.clone();
    }
    config.insecure_plaintext_for_development_only |= args.insecure_plaintext_for_development_only;
    Ok(config)
}

/// The rotation flags over the file's `rotation`.
fn rotation(args: &ServeArgs, config: &mut ServeConfig) {
    let to = match (&args.rotate_to_root, &args.rotate_to_ca_arn) {
        (Some(dir), _) => Some(IssuerSource::local(dir.clone())),
        (None, Some(arn)) => Some(IssuerSource::aws_like(arn.clone(), &config.issuer)),
        (None, None) => None,
    };
    if let Some(to) = to {
        config.rotation = Some(RotationSource::new(to));
    }
    if let (Some(hold), Some(rotation)) = (&args.rotation_hold, config.rotation.as_mut()) {
        rotation.hold = hold.clone();
    }
}

fn audit_sink(path: &std::path::Path) -> Result<Box<dyn Write + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}: the audit log cannot be opened", path.display()))?;
    Ok(Box::new(file))
}

async fn serve(args: ServeArgs, clock: &Clock) -> Result<ExitCode> {
    crate::logging::init(args.log_format, "info,sqlx=warn");
    let config = config(&args)?;
    if config.insecure_plaintext_for_development_only {
        tracing::warn!(
            "SERVING PLAIN HTTP (--insecure-plaintext-for-development-only): enrollment tokens and admin credentials cross the network in clear; never do this outside a laptop demo"
        );
    }
    let mut server = Server::build(
        &config,
        clock.clone(),
        AuditLog::new(audit_sink(&args.audit_log)?),
    )
    .await?;
    if let Some(path) = &args.request_log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: the request log cannot be opened", path.display()))?;
        server = server.with_request_log(meshtrust_service::RequestLog::new(Box::new(file)));
    }
    server
        .serve(shutdown_signal(), |address, tls| {
            let scheme = if tls { "https" } else { "http" };
            tracing::info!("meshtrust serve listening on {scheme}://{address}");
        })
        .await?;
    tracing::info!("meshtrust serve stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM can be handled");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn token_create(args: TokenCreateArgs, clock: &Clock) -> Result<ExitCode> {
    let mut config = load(args.config.as_deref())?;
    if let Some(store) = &args.store {
        config.store = store.clone();
    }
    let token = meshtrust_service::create_token(
        &config.store,
        &args.cluster,
        args.ttl,
        clock,
        "meshtrust serve token create",
    )
    .await?;
    if args.output == Output::Json {
        output::json(&token)?;
    } else {
        println!("{}", token.token);
        eprintln!(
            "one-time enrollment token for cluster {} (expires {}); it is shown only now",
            token.cluster, token.expires_at
        );
    }
    Ok(ExitCode::SUCCESS)
}
