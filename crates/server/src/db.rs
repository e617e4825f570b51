//! `evermail db status|migrate`: the metadata schema and, for MySQL, the database nodes.

use crate::config::Config;
use crate::storage;
use clap::Subcommand;
use evermail_meta::schema::{SchemaFit, SchemaVersion};
use std::path::Path;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Show the backend, the schema version in the database (and the oldest evermail
    /// compatible with it) against the newest this build knows, and for MySQL each
    /// node: reachable, Galera state, cluster size. Exits non-zero when something needs
    /// doing (a migration, an upgrade, a node that is down).
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
    match status.schema {
        Some(schema) => {
            let (advice, problem) = schema_advice(schema, status.latest);
            println!(
                "schema: version {} (compatible down to {}; this evermail knows up to {}): \
                 {advice}",
                schema.version, schema.compatible_down_to, status.latest
            );
            if let Some(problem) = problem {
                trouble.push(problem.to_string());
            }
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

/// What `db status` says about a schema for a build knowing up to `latest`, and the
/// trouble it reports (making the command fail), if any.
fn schema_advice(schema: SchemaVersion, latest: i64) -> (&'static str, Option<&'static str>) {
    match schema.fit(latest) {
        SchemaFit::Current => ("current", None),
        SchemaFit::Older => (
            "run `evermail db migrate`",
            Some("the schema needs a migration"),
        ),
        SchemaFit::NewerCompatible => (
            "newer than this evermail but compatible with it (a rolling upgrade in \
             progress); this evermail may run on it",
            None,
        ),
        SchemaFit::NewerIncompatible => (
            "newer than this evermail and not compatible with it; upgrade evermail",
            Some("the schema is newer than this evermail and not compatible with it"),
        ),
    }
}
