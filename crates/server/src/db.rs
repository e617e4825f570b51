//! `evermail db status|migrate`: the metadata schema and, for MySQL, the database nodes.

use crate::config::Config;
use crate::storage;
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Show the backend, the schema version in the database against the newest this
    /// build knows, and for MySQL each node: reachable, Galera state, cluster size.
    /// Exits non-zero when something needs doing (a migration, a node that is down).
    Status,
    /// Apply the schema migrations the database lacks. With MySQL, run it once (from
    /// any node) before the first `serve` and after upgrading evermail; `serve` does
    /// not migrate a shared database. With SQLite, `serve` also migrates on start.
    Migrate,
}

pub async fn run(command: DbCommand, config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    match command {
        DbCommand::Status => status(config, data_dir).await,
        DbCommand::Migrate => {
            let (before, after) = storage::db_migrate(config, data_dir).await?;
            if before == after {
                println!("schema version {after}: up to date, nothing to migrate");
            } else {
                println!("schema version {before} -> {after}: migrated");
            }
            Ok(())
        }
    }
}

async fn status(config: &Config, data_dir: &Path) -> anyhow::Result<()> {
    let status = storage::db_status(config, data_dir).await?;
    println!("backend: {}", status.backend);
    println!("database: {}", status.location);
    let mut trouble = Vec::new();
    match status.version {
        Some(v) if v == status.latest => {
            println!("schema: version {v} (this evermail knows up to {v}): current")
        }
        Some(v) if v < status.latest => {
            println!(
                "schema: version {v} (this evermail knows up to {}): run `evermail db migrate`",
                status.latest
            );
            trouble.push("the schema needs a migration".to_string());
        }
        Some(v) => {
            println!(
                "schema: version {v} (this evermail knows up to {}): newer than this \
                 evermail; upgrade it",
                status.latest
            );
            trouble.push("the schema is newer than this evermail".to_string());
        }
        None if status.error.is_none() => {
            println!(
                "schema: no database yet (this evermail knows up to {}); \
                 `evermail db migrate` or `evermail serve` creates it",
                status.latest
            );
        }
        None => {}
    }
    if let Some(e) = &status.error {
        println!("error: {e}");
        trouble.push("the database could not be read".to_string());
    }
    for node in &status.nodes {
        println!(
            "node {}: reachable={} state={} cluster_size={}{}",
            node.name,
            if node.reachable { "yes" } else { "no" },
            node.state,
            node.cluster_size,
            match &node.problem {
                None => String::new(),
                Some(p) => format!(" problem: {p}"),
            }
        );
        if node.problem.is_some() {
            trouble.push(format!("node {} is not usable", node.name));
        }
    }
    if trouble.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", trouble.join("; "))
    }
}
