//! The `portcullis` binary: a thin CLI over the library crates.

mod demo;
mod rules;
mod sample_api;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portcullis_gateway::{RunningGateway, config};

/// A proxy allocates and frees many small buffers per request; mimalloc's thread-local free
/// lists cost a fraction of glibc malloc's (measured in docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    about = "A security gateway for HTTP APIs",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a config file.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate config files: exit 0 when valid, or print every error and exit 1.
    Check {
        #[arg(long, short, required = true, num_args = 1..)]
        config: Vec<PathBuf>,
    },
    /// Run a sample API behind the gateway with its features switched on.
    Demo {
        /// HTTPS port of the gateway.
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// Port of the admin API on 127.0.0.1.
        #[arg(long, default_value_t = 9901)]
        admin_port: u16,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Sigma rules: lint them, replay stored events, convert them into SIEM queries.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load and lint every rule in DIR; exit 1 if any cannot be loaded.
    Check { dir: PathBuf },
    /// Replay stored events (JSON lines, as the event file holds them) and print the matches.
    Test {
        dir: PathBuf,
        #[arg(long)]
        events: PathBuf,
    },
    /// Translate the rules into queries over the Portcullis event fields.
    Convert {
        /// splunk, lucene, esql or kql.
        #[arg(long)]
        target: String,
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh random API key and the config entry that stores only its hash.
    New {
        /// Key id recorded in events (never the key itself).
        #[arg(long, default_value = "key-1")]
        id: String,
        /// Principal the key stands for.
        #[arg(long, default_value = "service")]
        principal: String,
        /// Scopes granted to the key.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
}

fn main() -> ExitCode {
    // The TLS provider goes in before anything can touch rustls.
    portcullis_gateway::tls::install_default_provider();
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Version => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => Ok(check(&config)),
        Command::Keys {
            command:
                KeysCommand::New {
                    id,
                    principal,
                    scopes,
                },
        } => {
            let (key, hash) = portcullis_identity::apikey::generate_key();
            println!("key (give this to the client; it is not stored anywhere): {key}");
            println!();
            println!("config entry for identity.api_keys.keys:");
            println!("  - id: {id}");
            println!("    hash: {hash}");
            println!("    principal: {principal}");
            println!("    scopes: [{}]", scopes.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { command } => match command {
            RulesCommand::Check { dir } => rules::check(&dir),
            RulesCommand::Test { dir, events } => rules::test(&dir, &events),
            RulesCommand::Convert { target, dir } => rules::convert(&dir, &target),
        },
        Command::Serve { config } => runtime().and_then(|rt| rt.block_on(serve(config))),
        Command::Demo { port, admin_port } => {
            runtime().and_then(|rt| rt.block_on(demo::run(port, admin_port)))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match config::load(file) {
            Ok(cfg) => println!(
                "{}: ok ({} listeners, {} routes, {} upstreams)",
                file.display(),
                cfg.listeners.len(),
                cfg.routes.len(),
                cfg.upstreams.len()
            ),
            Err(errors) => {
                failed = true;
                for e in &errors.0 {
                    eprintln!("{e}");
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<ExitCode> {
    let cfg = match config::load(&path) {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let running = RunningGateway::start(cfg, Some(path))
        .await
        .context("cannot start the gateway")?;
    wait_for_signals(&running).await;
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP reloads; SIGTERM or Ctrl-C start a graceful shutdown.
pub async fn wait_for_signals(running: &RunningGateway) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = running.gateway.reload().await;
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}
