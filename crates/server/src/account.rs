//! `evermail account ...`: accounts, passwords, quotas and aliases. These open the
//! same database as a running server (SQLite in WAL mode allows that), so they work
//! while it serves.

use crate::config::{Config, parse_size};
use crate::storage::open_mailstore;
use anyhow::{Context, bail};
use clap::Subcommand;
use std::io::{BufRead, IsTerminal};
use std::path::Path;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account with INBOX, Drafts, Sent, Trash, Junk and Archive. The
    /// password is read from standard input (first line), never from the command line.
    Add {
        /// The account's address, which is also its login, e.g. alice@example.com.
        address: String,
        /// Storage quota, e.g. 500M or 2G; default from [accounts] default_quota.
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
    },
    /// List accounts: address, bytes used, quota.
    List,
    /// Change an account's password (read from standard input).
    Passwd { address: String },
    /// Set an account's quota: a size such as 2G, or "none" for unlimited.
    Quota { address: String, size: String },
    /// Remove an account and all its mail.
    Remove { address: String },
    /// Manage aliases: other addresses, or a whole domain (@example.com), whose mail
    /// goes to an account.
    #[command(subcommand)]
    Alias(AliasCommand),
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS (name@domain, or @domain for a catch-all) to TARGET.
    Add { alias: String, target: String },
    /// Remove an alias.
    Remove { alias: String },
    /// List aliases as "ALIAS -> TARGET".
    List,
}

/// Reads a password: prompted twice without echo on a terminal, else the first line
/// of standard input (so scripts can pipe it in).
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("the password is empty (give it on standard input)");
    }
    Ok(password)
}

fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

pub async fn run(command: AccountCommand, config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    // Read the password before opening storage, so a bad invocation fails fast.
    let password = match &command {
        AccountCommand::Add { .. } => Some(read_password("Password")?),
        AccountCommand::Passwd { .. } => Some(read_password("New password")?),
        _ => None,
    };
    let mailstore = open_mailstore(config, data_dir).await?;
    match command {
        AccountCommand::Add { address, quota } => {
            let quota = quota.as_deref().map(parse_size).transpose()?;
            let password = password.expect("read above");
            let account = mailstore
                .create_account(&address, &password, quota)
                .await
                .with_context(|| format!("cannot create {address}"))?;
            println!("created {}", account.address);
        }
        AccountCommand::List => {
            for a in mailstore.list_accounts().await? {
                let quota = a
                    .quota_bytes
                    .map_or_else(|| "unlimited".to_string(), format_size);
                println!(
                    "{}\t{} used\tquota {quota}",
                    a.address,
                    format_size(a.used_bytes)
                );
            }
        }
        AccountCommand::Passwd { address } => {
            mailstore
                .set_password(&address, &password.expect("read above"))
                .await
                .with_context(|| format!("cannot change the password of {address}"))?;
            println!("password changed for {address}");
        }
        AccountCommand::Quota { address, size } => {
            let quota = if size.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(parse_size(&size)?)
            };
            mailstore
                .set_quota(&address, quota)
                .await
                .with_context(|| format!("cannot set the quota of {address}"))?;
            println!("quota of {address} set");
        }
        AccountCommand::Remove { address } => {
            mailstore
                .remove_account(&address)
                .await
                .with_context(|| format!("cannot remove {address}"))?;
            println!("removed {address}");
        }
        AccountCommand::Alias(AliasCommand::Add { alias, target }) => {
            mailstore
                .add_alias(&alias, &target)
                .await
                .with_context(|| format!("cannot add alias {alias}"))?;
            println!("{alias} -> {target}");
        }
        AccountCommand::Alias(AliasCommand::Remove { alias }) => {
            mailstore
                .remove_alias(&alias)
                .await
                .with_context(|| format!("cannot remove alias {alias}"))?;
            println!("removed alias {alias}");
        }
        AccountCommand::Alias(AliasCommand::List) => {
            for a in mailstore.list_aliases().await? {
                println!("{} -> {}", a.alias, a.target);
            }
        }
    }
    Ok(())
}
