//! Which database schema a build may run against: the one rule every backend applies.
//!
//! Schema changes are expand-then-contract, so during a rolling upgrade release N and
//! N+1 run side by side on one database. A build is named here by the newest schema
//! version it knows. Every migration records, next to its version, the oldest build
//! still compatible with the schema it leaves (`compatible_down_to`): a migration that
//! only adds what older builds ignore (a table, a nullable column, an index) records
//! the version before it, or older; one that older builds would break or mishandle (a
//! dropped column, a new rule every writer must follow) records its own version. The
//! record is in the database, not in the code, because the build that has to decide
//! is the older one, which has never heard of the newer migration.
//!
//! A build therefore refuses a schema only when some applied migration it does not
//! know is not compatible with it, and says which versions are involved.

use crate::{ErrorKind, MetaError};

/// Where a database's schema stands, as its `schema_migrations` table records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersion {
    /// The newest migration applied; 0 before the first.
    pub version: i64,
    /// The oldest build (by the newest schema version it knows) that may run against
    /// this schema: the largest `compatible_down_to` of the applied migrations. A
    /// migration recorded without one counts as compatible only with builds that know
    /// it.
    pub compatible_down_to: i64,
}

/// How a schema relates to a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaFit {
    /// The build knows exactly this schema.
    Current,
    /// The build knows migrations the database lacks: `evermail db migrate`.
    Older,
    /// Newer than the build, but only by migrations compatible with it.
    NewerCompatible,
    /// Newer than the build by a migration it must not run against.
    NewerIncompatible,
}

impl SchemaVersion {
    /// A schema whose migrations all recorded themselves compatible only with builds
    /// that know them (and the schema of a database with no migrations yet).
    pub fn exact(version: i64) -> SchemaVersion {
        SchemaVersion {
            version,
            compatible_down_to: version,
        }
    }

    /// How this schema relates to a build that knows versions up to `known`.
    pub fn fit(&self, known: i64) -> SchemaFit {
        if self.version == known {
            SchemaFit::Current
        } else if self.version < known {
            SchemaFit::Older
        } else if self.compatible_down_to <= known {
            SchemaFit::NewerCompatible
        } else {
            SchemaFit::NewerIncompatible
        }
    }

    /// Refuses (kind `Corrupt`) a schema newer than `known` that is not compatible
    /// with a build knowing up to `known`, naming both versions.
    pub fn check_runnable(&self, known: i64) -> Result<(), MetaError> {
        if self.fit(known) != SchemaFit::NewerIncompatible {
            return Ok(());
        }
        Err(MetaError::new(
            ErrorKind::Corrupt,
            format!(
                "the database schema is version {}, newer than this evermail understands \
                 ({known}) and not compatible with it: that schema needs an evermail that \
                 knows schema version {} or newer; upgrade evermail before starting it on \
                 this database",
                self.version, self.compatible_down_to
            ),
        ))
    }
}

/// The `compatible_down_to` a migration records: its entry in `table` (pairs of
/// `(version, compatible_down_to)`, for the migrations an older build may run
/// against), else its own version, the safe default.
pub fn compatible_down_to(table: &[(i64, i64)], version: i64) -> i64 {
    table
        .iter()
        .find(|(v, _)| *v == version)
        .map_or(version, |(_, down_to)| (*down_to).min(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_refuses_only_a_schema_it_is_not_compatible_with() {
        // (version, compatible_down_to, build knows up to, fit)
        let cases = [
            (3, 3, 3, SchemaFit::Current),
            (2, 2, 3, SchemaFit::Older),
            (0, 0, 3, SchemaFit::Older),
            (4, 3, 3, SchemaFit::NewerCompatible),
            (5, 2, 3, SchemaFit::NewerCompatible),
            (4, 4, 3, SchemaFit::NewerIncompatible),
            (5, 4, 3, SchemaFit::NewerIncompatible),
        ];
        for (version, compatible_down_to, known, fit) in cases {
            let schema = SchemaVersion {
                version,
                compatible_down_to,
            };
            assert_eq!(
                schema.fit(known),
                fit,
                "{schema:?} for a build knowing {known}"
            );
            let refused = schema.check_runnable(known).err();
            assert_eq!(
                refused.is_some(),
                fit == SchemaFit::NewerIncompatible,
                "{schema:?}"
            );
            if let Some(e) = refused {
                assert_eq!(e.kind(), ErrorKind::Corrupt);
                let text = e.to_string();
                assert!(text.contains(&format!("version {version}")), "{text}");
                assert!(text.contains(&format!("({known})")), "{text}");
                assert!(
                    text.contains(&format!("{compatible_down_to} or newer")),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn an_unlisted_migration_is_compatible_only_with_builds_that_know_it() {
        let table = [(4, 3), (6, 9)];
        assert_eq!(compatible_down_to(&table, 4), 3);
        assert_eq!(compatible_down_to(&table, 5), 5);
        // An entry can never claim more than its own version.
        assert_eq!(compatible_down_to(&table, 6), 6);
    }
}
