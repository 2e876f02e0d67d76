//! The command line: parse arguments, load configuration, set up logging,
//! and hand over to `app`. Nothing else happens here.
//!
//! Holds no logic of its own: everything it calls lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jira_dora::config::{self, Config, LogFormat, ProcessEnv};
use jira_dora::harvest::recompute;
use jira_dora::{app, cli, definitions::DefinitionSet};
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
    /// Ask a running service to refresh projects (all configured when none
    /// are named).
    Refresh {
        projects: Vec<String>,
        /// A full refresh instead of an incremental one.
        #[arg(long)]
        full: bool,
        /// Follow the job with a progress bar per project; exit non-zero if
        /// it fails.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Print the four DORA keys of projects from a running service.
    Metrics {
        #[arg(required = true)]
        projects: Vec<String>,
        /// The last N complete weeks (default 13).
        #[arg(long)]
        weeks: Option<u32>,
        /// The last N complete months instead (a month is the ISO weeks
        /// whose Thursday falls in it).
        #[arg(long, conflicts_with = "weeks")]
        months: Option<u32>,
        /// Only the work of this team (as the definitions' `teams(issue)`
        /// names it) within the projects.
        #[arg(long)]
        team: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List the items behind one figure of projects (each deployment, each
    /// completed item with its lead time, ...) from a running service.
    Explain {
        #[arg(required = true)]
        projects: Vec<String>,
        /// The figure whose items to list.
        #[arg(long, value_enum)]
        figure: cli::FigureName,
        /// Only the items of this team (as the definitions' `teams(issue)`
        /// names it).
        #[arg(long)]
        team: Option<String>,
        /// The last N complete weeks (default 13).
        #[arg(long)]
        weeks: Option<u32>,
        /// The last N complete months instead.
        #[arg(long, conflicts_with = "weeks")]
        months: Option<u32>,
        /// JSON (the API's canonical mapping) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Read an API key from standard input and print its SHA-256, for
    /// `[[auth.keys]]` (the configuration holds hashes, never keys).
    HashKey,
    /// Delete every file the service stored in its data folder, and list
    /// them.
    Purge,
    /// Write the encoded protobuf file descriptor set of the API (with its
    /// `google.api.http` rules), as gateways such as Envoy's gRPC-JSON
    /// transcoder need it.
    DescriptorSet {
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// How the client commands reach the service.
#[derive(clap::Args)]
struct TargetArgs {
    /// Address of the service.
    #[arg(long, env = "DORA_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// API key (sent as `authorization: Bearer`).
    #[arg(long, env = "DORA_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

impl TargetArgs {
    fn target(self) -> cli::Target {
        cli::Target { addr: self.addr, api_key: self.api_key }
    }
}

fn client(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new().context("starting the runtime")?.block_on(command)
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let text = match path {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("reading the configuration file {}", p.display()))?,
        ),
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
    let (scheme, h2c) = if config.tls.is_some() { ("https", "") } else { ("http", " --http2-prior-knowledge") };
    println!("jira-dora listening on {addr} (gRPC; health and reflection on the same port)");
    println!("dashboard: {scheme}://{addr}/  JSON: {scheme}://{addr}/v1/projects  (gRPC-Web on the same port too)");
    println!(
        "try: buf curl --protocol grpc{h2c} --data '{{\"project_keys\":[\"SHOP\"]}}' {scheme}://{addr}/dora.v1.DoraMetrics/GetMetrics"
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        app::signal().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    app::run(config, listener, rx).await
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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

/// Prints the SHA-256 of the key on standard input (one line; the line end
/// is not part of the key).
fn hash_key() -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the key from standard input")?;
    let key = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!key.is_empty(), "no key on standard input");
    if key.len() < 32 {
        eprintln!("warning: a key shorter than 32 characters is easy to guess; use a long random one");
    }
    println!("{}", hex::encode(Sha256::digest(key.as_bytes())));
    Ok(())
}

fn purge(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let purged =
        jira_dora::store::retention::purge(data_dir).with_context(|| format!("purging {}", data_dir.display()))?;
    for path in &purged.deleted {
        println!("deleted {}", path.display());
    }
    for path in &purged.kept {
        println!("kept {} (not written by this service)", path.display());
    }
    println!("purged {} file(s), {} bytes, from {}", purged.deleted.len(), purged.bytes, data_dir.display());
    Ok(())
}

fn write_descriptor_set(out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::Write;
    let bytes = jira_dora::proto::FILE_DESCRIPTOR_SET;
    match out {
        Some(path) => std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display())),
        None => std::io::stdout().lock().write_all(bytes).context("writing to standard output"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Client commands need no service configuration.
    let command = match cli.command.unwrap_or(Command::Serve) {
        Command::Refresh { projects, full, watch, target } => {
            return exit(client(async move { cli::refresh(&target.target(), projects, full, watch).await }));
        }
        Command::Metrics { projects, weeks, months, team, json, target } => {
            let period = match months {
                Some(months) => cli::Period::Months(months),
                None => cli::Period::Weeks(weeks.unwrap_or(13)),
            };
            return exit(client(async move { cli::metrics(&target.target(), projects, team, period, json).await }));
        }
        Command::Explain { projects, figure, team, weeks, months, json, target } => {
            let period = match months {
                Some(months) => cli::Period::Months(months),
                None => cli::Period::Weeks(weeks.unwrap_or(13)),
            };
            return exit(client(
                async move { cli::explain(&target.target(), projects, figure, team, period, json).await },
            ));
        }
        Command::HashKey => return exit(hash_key()),
        other => other,
    };
    let config = match load_config(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Purge => purge(&config.data_dir),
        Command::CheckConfig => {
            println!(
                "configuration is valid ({})",
                if config.is_demo() { "demo: no Jira configured" } else { "Jira configured" }
            );
            Ok(())
        }
        Command::CheckDefs { dir, preview } => {
            let dir = dir.unwrap_or_else(|| config.defs_dir.clone());
            DefinitionSet::load_dir(&dir, &app::extra_fields(&config)).map_err(anyhow::Error::from).and_then(|d| {
                println!("definitions in {} are valid (version {})", dir.display(), d.version());
                if preview {
                    let now = chrono::Utc::now();
                    let today = now.with_timezone(&config.report_tz).date_naive();
                    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
                    let facts = runtime.block_on(app::demo::facts(today))?;
                    let previews = recompute::preview_against_shipped(&facts, &d, now, config.report_tz)
                        .map_err(|e| anyhow::anyhow!("the definitions fail on the demo site: {e}"))?;
                    print_previews(&previews);
                }
                Ok(())
            })
        }
        Command::Refresh { .. } | Command::Metrics { .. } | Command::Explain { .. } | Command::HashKey => {
            unreachable!("handled above")
        }
        Command::DescriptorSet { out } => write_descriptor_set(out.as_deref()),
        Command::Serve => {
            init_logs(if cli.json_logs { LogFormat::Json } else { config.log_format });
            tokio::runtime::Runtime::new().context("starting the runtime").and_then(|rt| rt.block_on(serve(config)))
        }
    };
    exit(result)
}
