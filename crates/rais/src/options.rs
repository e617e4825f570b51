use serde::Deserialize;

/// `[storage.maintenance]`: the background repair, scrub and garbage collection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaisOptions {
    /// Run the background worker in `evermail serve` (the admin commands work either
    /// way).
    pub enabled: bool,
    /// Seconds between repair passes (restore replica counts, move data off draining
    /// stores). A read that finds a bad copy does not wait for it: it marks the copy,
    /// and the next pass repairs it.
    pub repair_interval_secs: u64,
    /// Seconds between light scrubs (every copy: exists, with the right size).
    pub scrub_interval_secs: u64,
    /// Seconds between deep scrubs (every copy read whole and hashed).
    pub deep_scrub_interval_secs: u64,
    /// Bytes per second that maintenance may read and write, all passes together.
    pub bytes_per_sec: u64,
    /// Objects per second that maintenance may check, copy or delete.
    pub objects_per_sec: u64,
    /// Seconds a body must stay unreferenced before it is deleted. Long enough that a
    /// message moved or re-delivered meanwhile keeps its body without a new upload.
    pub gc_grace_secs: u64,
    /// Seconds between garbage collection passes.
    pub gc_interval_secs: u64,
}

impl Default for RaisOptions {
    fn default() -> Self {
        RaisOptions {
            enabled: true,
            repair_interval_secs: 60,
            scrub_interval_secs: 24 * 3600,
            deep_scrub_interval_secs: 7 * 24 * 3600,
            bytes_per_sec: 50 * 1024 * 1024,
            objects_per_sec: 500,
            gc_grace_secs: 24 * 3600,
            gc_interval_secs: 3600,
        }
    }
}

impl RaisOptions {
    /// Refuses settings that would stop maintenance or spin it.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("repair_interval_secs", self.repair_interval_secs),
            ("scrub_interval_secs", self.scrub_interval_secs),
            ("deep_scrub_interval_secs", self.deep_scrub_interval_secs),
            ("bytes_per_sec", self.bytes_per_sec),
            ("objects_per_sec", self.objects_per_sec),
            ("gc_interval_secs", self.gc_interval_secs),
        ] {
            if value == 0 {
                return Err(format!("[storage.maintenance] {name} must be more than 0"));
            }
        }
        Ok(())
    }
}
