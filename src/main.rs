//! The command line: parse arguments, load configuration, set up logging,
//! and hand over to `app`. Nothing else happens here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jira_dora::config::{self, Config, LogFormat, ProcessEnv};
use jira_dora::{app, definitions::DefinitionSet, recompute};
use tracing_subscriber::EnvFilter;

/// A read-only DORA metrics service for Jira.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Environment variables override it.
    #[arg(long, global = true, env = "DORA_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). Without a Jira configured, serves the
    /// embedded demo site.
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Compile and check the metric definitions and exit; with `--preview`,
    /// also compare them with the built-in defaults on the demo site.
    CheckDefs {
        /// Folder of `.rhai` files (default: the configured one).
        dir: Option<PathBuf>,
        /// Show the effect on the demo site's last 13 weeks.
        #[arg(long)]
        preview: bool,
    },
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let text = match path {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading the configuration file {}", p.display()))?),
        None => None,
    };
    Ok(config::load(text.as_deref(), &ProcessEnv)?)
}

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("DORA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("jira-dora listening on {addr} (gRPC; health and reflection on the same port)");
    println!("try: buf curl --protocol grpc --http2-prior-knowledge --data '{{\"project_keys\":[\"SHOP\"]}}' http://{addr}/dora.v1.DoraMetrics/GetMetrics");
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        app::signal().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    app::run(config, listener, rx).await
}

fn print_previews(previews: &[recompute::ProjectPreview]) {
    println!("effect on the demo site, last 13 weeks (built-in defaults -> these definitions):");
    for p in previews {
        let (a, b) = (&p.current, &p.proposed);
        let hours = |h: Option<f64>| h.map_or("-".to_owned(), |h| format!("{h:.1} h"));
        println!(
            "  {}: deployments {} -> {}, failed {} -> {}, completed {} -> {}, lead time median {} -> {}, incidents {} -> {}",
            p.key,
            a.deployments,
            b.deployments,
            a.change_failure.part,
            b.change_failure.part,
            a.completed,
            b.completed,
            hours(a.lead_time.median_hours),
            hours(b.lead_time.median_hours),
            a.incidents,
            b.incidents
        );
        if !p.changed_statuses.is_empty() {
            println!("    statuses now classified differently: {}", p.changed_statuses.join(", "));
        }
        if !p.changed_issue_types.is_empty() {
            println!("    issue types now classified differently: {}", p.changed_issue_types.join(", "));
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("configuration is valid ({})", if config.is_demo() { "demo: no Jira configured" } else { "Jira configured" });
            Ok(())
        }
        Command::CheckDefs { dir, preview } => {
            let dir = dir.unwrap_or_else(|| config.defs_dir.clone());
            DefinitionSet::load_dir(&dir).map_err(anyhow::Error::from).and_then(|d| {
                println!("definitions in {} are valid (version {})", dir.display(), d.version());
                if preview {
                    let previews = recompute::preview_on_demo(&d, chrono::Utc::now(), config.report_tz)
                        .map_err(|e| anyhow::anyhow!("the definitions fail on the demo site: {e}"))?;
                    print_previews(&previews);
                }
                Ok(())
            })
        }
        Command::Serve => {
            init_logs(if cli.json_logs { LogFormat::Json } else { config.log_format });
            tokio::runtime::Runtime::new().context("starting the runtime").and_then(|rt| rt.block_on(serve(config)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
