//! LIST and LSUB: the account's mailboxes matching a reference and a pattern, with
//! special-use (RFC 6154) and child (RFC 3348) attributes.
//!
//! Names that exist only as the parent of another (`Lists` when only `Lists/rust`
//! exists) are listed as `\Noselect \HasChildren`, so clients can draw the tree.

use std::collections::BTreeMap;

use evermail_imap_proto::command::{List, ListReturn, ListSelect, Lsub};
use evermail_imap_proto::mutf7;
use evermail_imap_proto::response::{Data, ListItem};
use evermail_mailbox::{ErrorKind, MailboxRecord};

use super::DELIMITER;
use crate::session::{CmdError, CmdResult, Done, Session};

/// One name LIST may report.
struct Entry {
    /// The mailbox, for one that exists.
    record: Option<MailboxRecord>,
    special_use: Option<String>,
    subscribed: bool,
    /// `false` for a parent that exists only because a child does.
    exists: bool,
    has_children: bool,
}

impl Session {
    pub(crate) async fn list(&mut self, list: List) -> CmdResult {
        let account = self.account()?;
        let mut subscribed_only = false;
        let mut special_use_only = false;
        let mut recursive = false;
        for option in &list.selection {
            match option {
                ListSelect::Subscribed => subscribed_only = true,
                ListSelect::SpecialUse => special_use_only = true,
                ListSelect::RecursiveMatch => recursive = true,
                // There are no remote mailboxes to include.
                ListSelect::Remote => {}
                ListSelect::Other(name) => {
                    return Err(CmdError::bad(format!(
                        "unknown LIST selection option {name}"
                    )));
                }
            }
        }
        // RFC 5258 section 3: RECURSIVEMATCH only qualifies another selection option.
        if recursive && !subscribed_only && !special_use_only {
            return Err(CmdError::bad(
                "RECURSIVEMATCH needs another selection option",
            ));
        }
        let extended = !list.selection.is_empty() || !list.return_opts.is_empty();
        let show_subscribed = subscribed_only || list.return_opts.contains(&ListReturn::Subscribed);
        let status_items = list.return_opts.iter().find_map(|o| match o {
            ListReturn::Status(items) => Some(items.clone()),
            _ => None,
        });
        // `LIST "" ""` asks only for the delimiter (and the root of the reference).
        if list.patterns.iter().all(String::is_empty) {
            self.write_data(Data::List(ListItem {
                attributes: vec!["\\Noselect".into()],
                delimiter: Some(DELIMITER),
                name: String::new(),
                child_info_subscribed: false,
                old_name: None,
            }));
            return Done::ok("LIST completed");
        }
        let patterns = self.patterns(&list.reference, &list.patterns);
        let entries = self.entries(account.id).await?;
        let selected = |entry: &Entry| {
            (!subscribed_only || entry.subscribed)
                && (!special_use_only || entry.special_use.is_some())
        };
        for (name, entry) in &entries {
            if !patterns.iter().any(|p| matches(p, name)) {
                continue;
            }
            // With RECURSIVEMATCH and SUBSCRIBED, a name is also listed for a
            // subscribed descendant the patterns do not reach (RFC 5258 section 3.5).
            let child_info = recursive
                && subscribed_only
                && entries.iter().any(|(other, e)| {
                    e.subscribed
                        && is_descendant(other, name)
                        && !patterns.iter().any(|p| matches(p, other))
                });
            if !selected(entry) && !child_info {
                continue;
            }
            let mut attributes = Vec::new();
            if !entry.exists {
                // LIST-EXTENDED names a name that is no mailbox \NonExistent, which
                // implies \Noselect (RFC 5258 section 3.4).
                attributes.push(
                    if extended {
                        "\\NonExistent"
                    } else {
                        "\\Noselect"
                    }
                    .into(),
                );
            }
            attributes.push(if entry.has_children {
                "\\HasChildren".to_string()
            } else {
                "\\HasNoChildren".to_string()
            });
            if show_subscribed && entry.subscribed {
                attributes.push("\\Subscribed".into());
            }
            if let Some(special) = &entry.special_use {
                attributes.push(special.clone());
            }
            let wire_name = self.encode_name(name);
            self.write_data(Data::List(ListItem {
                attributes,
                delimiter: Some(DELIMITER),
                name: wire_name.clone(),
                child_info_subscribed: child_info,
                old_name: None,
            }));
            // LIST-STATUS (RFC 5819): STATUS follows the LIST of each selectable
            // mailbox; a mailbox gone in between is just left out.
            if let (Some(items), Some(record)) = (&status_items, &entry.record) {
                match self.status_values(record, items).await {
                    Ok(items) => self.write_data(Data::Status {
                        mailbox: wire_name,
                        items,
                    }),
                    Err(CmdError::Mail(e)) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Done::ok("LIST completed")
    }

    pub(crate) async fn lsub(&mut self, lsub: Lsub) -> CmdResult {
        let account = self.account()?;
        let patterns = self.patterns(&lsub.reference, &[lsub.pattern]);
        let entries = self.entries(account.id).await?;
        for (name, entry) in &entries {
            if entry.subscribed && patterns.iter().any(|p| matches(p, name)) {
                let name = self.encode_name(name);
                self.write_data(Data::Lsub(ListItem {
                    attributes: Vec::new(),
                    delimiter: Some(DELIMITER),
                    name,
                    child_info_subscribed: false,
                    old_name: None,
                }));
            }
        }
        Done::ok("LSUB completed")
    }

    /// The full patterns (reference + pattern) as stored names would match them.
    fn patterns(&self, reference: &str, patterns: &[String]) -> Vec<String> {
        patterns
            .iter()
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let full = format!("{reference}{p}");
                // A rev1 pattern is modified UTF-7 like a name; one that does not decode
                // cannot match anything we store.
                let full = if self.utf8_names() {
                    full
                } else {
                    mutf7::decode(&full).ok()?
                };
                Some(normalize_inbox(&full))
            })
            .collect()
    }

    /// Every mailbox of the account and every parent name implied by one, sorted with
    /// INBOX first.
    async fn entries(
        &self,
        account: evermail_types::AccountId,
    ) -> Result<Vec<(String, Entry)>, CmdError> {
        let mailboxes = self.mailstore.mailboxes(account).await?;
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for m in &mailboxes {
            entries.insert(
                m.name.clone(),
                Entry {
                    record: Some(m.clone()),
                    special_use: m.special_use.clone(),
                    subscribed: m.subscribed,
                    exists: true,
                    has_children: false,
                },
            );
        }
        for m in &mailboxes {
            let mut name = m.name.as_str();
            while let Some((parent, _)) = name.rsplit_once(DELIMITER) {
                if parent.is_empty() {
                    break;
                }
                entries
                    .entry(parent.to_string())
                    .or_insert(Entry {
                        record: None,
                        special_use: None,
                        subscribed: false,
                        exists: false,
                        has_children: true,
                    })
                    .has_children = true;
                name = parent;
            }
        }
        let mut sorted: Vec<(String, Entry)> = entries.into_iter().collect();
        sorted.sort_by_key(|(name, _)| name != "INBOX");
        Ok(sorted)
    }
}

/// Whether `name` is below `parent` in the hierarchy.
fn is_descendant(name: &str, parent: &str) -> bool {
    name.strip_prefix(parent)
        .is_some_and(|rest| rest.starts_with(DELIMITER))
}

/// Upper-cases a leading `inbox` so that the pattern matches INBOX however the client
/// spelled it (INBOX is case-insensitive, RFC 9051 section 5.1; other names are not).
fn normalize_inbox(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    if bytes.len() >= 5
        && bytes[..5].eq_ignore_ascii_case(b"INBOX")
        && (bytes.len() == 5 || bytes[5] == DELIMITER as u8)
    {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_string()
    }
}

/// Whether `name` matches a LIST pattern: `*` matches anything, `%` anything but the
/// hierarchy delimiter. Dynamic programming rather than backtracking, so a pattern of
/// many wildcards costs pattern length times name length, never more.
fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // row[j]: the pattern so far matches the first j characters of the name.
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                for j in 0..=n.len() {
                    next[j] =
                        row[j] || (j > 0 && next[j - 1] && (pc == '*' || n[j - 1] != DELIMITER));
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_wildcards() {
        let cases = [
            ("*", "INBOX", true),
            ("*", "Lists/rust", true),
            ("%", "Lists", true),
            ("%", "Lists/rust", false),
            ("Lists/%", "Lists/rust", true),
            ("Lists/%", "Lists/rust/async", false),
            ("Lists/*", "Lists/rust/async", true),
            ("Lists/*", "Lists", false),
            ("L*t", "Lists/rust", true),
            ("L%t", "Lists/rust", false),
            ("INBOX", "INBOX", true),
            ("Sent", "sent", false),
            ("", "", true),
            ("**%%*", "a/b/c", true),
            ("a%%b", "a/b", false),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(matches(pattern, name), want, "{pattern} ~ {name}");
        }
        let long = "*".repeat(10_000);
        assert!(matches(&long, "abc"));
    }

    #[test]
    fn inbox_is_case_insensitive_only_as_a_whole_name() {
        assert_eq!(normalize_inbox("inbox"), "INBOX");
        assert_eq!(normalize_inbox("Inbox/sub"), "INBOX/sub");
        assert_eq!(normalize_inbox("inboxes"), "inboxes");
        assert_eq!(normalize_inbox("in*"), "in*");
    }
}
