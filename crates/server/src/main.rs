//! `evermail`: the server and its admin commands, in one binary.
//!
//! Run with no arguments but `serve`, it is a working single-node mail server on
//! loopback, storing everything under `./evermail-data`.

mod account;
mod config;
mod db;
mod frontends;
mod lab;
mod node_cli;
mod proxy;
mod rais_cli;
mod registry;
mod serve;
mod storage;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// evermail: an always-on mail server (IMAP, LMTP) that never loses an acknowledged
/// message.
#[derive(Parser)]
#[command(version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// The data directory (metadata database and default blob store).
    /// [default: ./evermail-data, or data_dir from the config file]
    #[arg(long, global = true, env = "EVERMAIL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The configuration file (TOML); `evermail config example` prints one.
    #[arg(
        long,
        short,
        global = true,
        env = "EVERMAIL_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: IMAP, LMTP and the admin HTTP endpoint. SIGTERM or Ctrl-C
    /// stops it cleanly: in-flight deliveries finish, sessions are told, exit code 0.
    Serve,
    /// Manage accounts, passwords, quotas and aliases (works while the server runs).
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// List the mail domains (every domain with an account or an alias).
    Domains,
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The metadata database: schema version, migrations, database nodes.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// The blob stores every node uses: list, status, add, set, drain, remove.
    #[command(subcommand)]
    Store(rais_cli::StoreCommand),
    /// Message bodies: scrub, repair, stat, garbage collection.
    #[command(subcommand)]
    Blob(rais_cli::BlobCommand),
    /// Run a proxy: IMAP and LMTP front door for the cluster's mailbox nodes ([proxy]
    /// section), routing each user to a node by rendezvous hashing, with failover.
    Proxy,
    /// A local cluster in one command (mailbox nodes, two proxies, three stores):
    /// up, status, down.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// The mailbox nodes of the cluster: list, drain, undrain, forget.
    #[command(subcommand)]
    Node(node_cli::NodeCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration file with every setting at its default.
    Example,
    /// Check a configuration file and print the settings in effect.
    Check,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("evermail: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evermail: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    if let Command::Lab(command) = cli.command {
        return lab::run(command).await;
    }
    let config = config::Config::load(cli.config.as_deref())?;
    let data_dir = config.data_dir(cli.data_dir.as_deref());
    match cli.command {
        Command::Serve => serve::serve(config, data_dir).await,
        Command::Account(command) => account::run(command, &config, &data_dir).await,
        Command::Domains => {
            let mailstore = storage::open_mailstore(&config, &data_dir).await?;
            for domain in mailstore.list_domains().await? {
                println!("{domain}");
            }
            Ok(())
        }
        Command::Db(command) => db::run(command, &config, &data_dir).await,
        Command::Store(command) => rais_cli::run_store(command, &config, &data_dir).await,
        Command::Blob(command) => rais_cli::run_blob(command, &config, &data_dir).await,
        Command::Proxy => proxy::proxy(config, data_dir).await,
        Command::Node(command) => node_cli::run(command, &config, &data_dir).await,
        Command::Config(ConfigCommand::Check) => {
            println!("data directory: {}", data_dir.display());
            println!("{config:#?}");
            Ok(())
        }
        Command::Config(ConfigCommand::Example) | Command::Lab(_) => {
            unreachable!("handled above")
        }
    }
}
