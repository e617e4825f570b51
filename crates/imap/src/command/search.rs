//! SEARCH and UID SEARCH. Sequence numbers, UIDs, flags, sizes, internal dates and
//! MODSEQs come from what the session already holds. BODY, TEXT and the header keys
//! on a string (SUBJECT, FROM, TO, CC, BCC, HEADER) are answered by the node's text
//! index (`Mailstore::search_text`) for the messages the other keys leave open. What
//! the index cannot answer (a string under three characters, no index yet, messages
//! it does not hold) is judged as without it: header keys and SENT* parse the header
//! cache (`Mailstore::header_texts`, 500 messages per metadata read), BODY and TEXT
//! read and parse a message's verified body (`Mailstore::message_text`).

use std::time::{SystemTime, UNIX_EPOCH};

use evermail_imap_proto::SequenceSet;
use evermail_imap_proto::command::{Search, SearchKey, SearchReturn};
use evermail_imap_proto::response::{Code, Data, ESearch};
use evermail_mailbox::{ErrorKind, MailError, MessageRecord, MessageText, TextKey};

use crate::session::{CmdError, CmdResult, Done, Session};

/// What a key is evaluated against besides the message itself.
struct Context<'a> {
    exists: u32,
    largest_uid: u32,
    now: i64,
    /// What `$` names: the UIDs the last `RETURN (SAVE)` kept, ascending.
    saved: &'a [evermail_types::Uid],
    /// The UIDs \Recent to this session.
    recent: &'a std::collections::BTreeSet<evermail_types::Uid>,
    /// What the text index answered for the text and header keys, if it did.
    indexed: Option<&'a Indexed>,
}

/// The keys the node's text index answered (`Mailstore::search_text`): for those a
/// message is judged without reading its header or body.
#[derive(Default)]
struct Indexed {
    /// The keys and the UIDs matching them, ascending.
    answers: Vec<(TextKey, Vec<evermail_types::Uid>)>,
    /// Messages the index does not hold: judged by reading them.
    unindexed: std::collections::BTreeSet<evermail_types::Uid>,
}

/// The header field and string of a header key on a string.
fn header_key(key: &SearchKey) -> Option<(&str, &str)> {
    match key {
        SearchKey::From(s) => Some(("from", s)),
        SearchKey::To(s) => Some(("to", s)),
        SearchKey::Cc(s) => Some(("cc", s)),
        SearchKey::Bcc(s) => Some(("bcc", s)),
        SearchKey::Subject(s) => Some(("subject", s)),
        SearchKey::Header(name, s) => Some((name, s)),
        _ => None,
    }
}

impl Indexed {
    /// The index's form of `key`, if it is one the index answers.
    fn key(key: &SearchKey) -> Option<TextKey> {
        match key {
            SearchKey::Body(s) => Some(TextKey::Body(s.clone())),
            SearchKey::Text(s) => Some(TextKey::Text(s.clone())),
            k => header_key(k).map(|(name, s)| TextKey::Header(name.into(), s.into())),
        }
    }

    /// Whether `indexed` is the index's form of `key`.
    fn is(indexed: &TextKey, key: &SearchKey) -> bool {
        match (indexed, key) {
            (TextKey::Body(a), SearchKey::Body(b)) | (TextKey::Text(a), SearchKey::Text(b)) => {
                a == b
            }
            (TextKey::Header(name, a), k) => {
                header_key(k).is_some_and(|(n, b)| n == name && a == b)
            }
            _ => false,
        }
    }

    fn answer(&self, key: &SearchKey) -> Option<&[evermail_types::Uid]> {
        self.answers
            .iter()
            .find(|(k, _)| Indexed::is(k, key))
            .map(|(_, uids)| &uids[..])
    }

    /// Whether the message `uid` matches `key`, when the index answered that.
    fn lookup(&self, key: &SearchKey, uid: evermail_types::Uid) -> Option<bool> {
        let answer = self.answer(key)?;
        (!self.unindexed.contains(&uid)).then(|| answer.binary_search(&uid).is_ok())
    }

    /// Whether no message needs its body read for `key`'s BODY and TEXT keys.
    fn answers_all(&self, key: &SearchKey) -> bool {
        let mut keys = Vec::new();
        text_keys(key, &mut keys);
        self.unindexed.is_empty()
            && keys
                .iter()
                .filter(|k| matches!(k, SearchKey::Body(_) | SearchKey::Text(_)))
                .all(|k| self.answer(k).is_some())
    }
}

/// The keys anywhere in `key` the text index may answer: BODY and TEXT, and the
/// header keys on a string long enough for the index to narrow (for a shorter one
/// the header cache is read as it would be anyway).
fn text_keys<'k>(key: &'k SearchKey, into: &mut Vec<&'k SearchKey>) {
    match key {
        SearchKey::And(keys) => keys.iter().for_each(|k| text_keys(k, into)),
        SearchKey::Or(a, b) => {
            text_keys(a, into);
            text_keys(b, into);
        }
        SearchKey::Not(k) => text_keys(k, into),
        SearchKey::Body(_) | SearchKey::Text(_) => into.push(key),
        k => {
            if header_key(k).is_some_and(|(_, s)| {
                s.to_lowercase().chars().count() >= evermail_mailbox::MIN_INDEXED_CHARS
            }) {
                into.push(key);
            }
        }
    }
}

impl Session {
    pub(crate) async fn search(&mut self, tag: &str, search: Search) -> CmdResult {
        let rev2 = self.rev2;
        self.selected_mut()?;
        // A MODSEQ key is CONDSTORE enabling, and the reply then carries the highest
        // MODSEQ of what matched (RFC 7162 section 3.1.5).
        let wants_modseq = has_modseq(&search.key);
        if wants_modseq {
            self.enable_condstore();
        }
        let opts = search.return_opts.clone().unwrap_or_default();
        let save = opts.contains(&SearchReturn::Save);
        let selected = self.selected_mut()?;
        // RFC 5182 section 2.1: a SEARCH ... SAVE that fails leaves `$` empty, so the
        // old result is taken out first; `$` in this search's own criteria still
        // names it.
        let previous = if save {
            std::mem::take(&mut selected.saved)
        } else {
            Vec::new()
        };
        if let Some(charset) = &search.charset {
            // RFC 6855 section 3: with UTF8=ACCEPT every string is UTF-8 already.
            if self.enabled.utf8_accept {
                return Err(CmdError::bad("no CHARSET after ENABLE UTF8=ACCEPT"));
            }
            check_charset(charset)?;
        }
        let indices = self
            .search_indices(&search.key, save.then_some(previous))
            .await?;
        let selected = self.selected_mut()?;
        let matched = || indices.iter().map(|&i| (i, &selected.messages[i]));
        let mod_seq = wants_modseq
            .then(|| matched().map(|(_, m)| m.modseq.0).max())
            .flatten();
        let found_uids: Vec<evermail_types::Uid> = matched().map(|(_, m)| m.uid).collect();
        let found: Vec<u32> = matched()
            .map(|(i, m)| {
                if search.uid {
                    m.uid.get()
                } else {
                    i as u32 + 1
                }
            })
            .collect();
        if save {
            // RFC 5182 section 2.4: with MIN or MAX but neither ALL nor COUNT, only what
            // they name is saved.
            let only_ends = !opts.contains(&SearchReturn::All)
                && !opts.contains(&SearchReturn::Count)
                && (opts.contains(&SearchReturn::Min) || opts.contains(&SearchReturn::Max));
            selected.saved = if only_ends {
                let mut ends = Vec::new();
                if opts.contains(&SearchReturn::Min) {
                    ends.extend(found_uids.first());
                }
                if opts.contains(&SearchReturn::Max) {
                    ends.extend(found_uids.last());
                }
                ends.dedup();
                ends
            } else {
                found_uids
            };
            // SAVE alone asks for no result at all.
            if opts.iter().all(|o| *o == SearchReturn::Save) {
                return Done::ok(if search.uid {
                    "UID SEARCH completed, result saved"
                } else {
                    "SEARCH completed, result saved"
                });
            }
        }
        // IMAP4rev2 answers every SEARCH with ESEARCH; RETURN asks for it in rev1.
        match (search.return_opts, rev2) {
            (None, false) => self.write_data(Data::Search {
                numbers: found,
                mod_seq,
            }),
            (opts, _) => {
                let mut opts = opts.unwrap_or_default();
                if opts.is_empty() {
                    opts.push(SearchReturn::All);
                }
                let mut reply = ESearch {
                    tag: Some(tag.to_string()),
                    uid: search.uid,
                    mod_seq,
                    ..ESearch::default()
                };
                for opt in opts {
                    match opt {
                        SearchReturn::Min => reply.min = found.first().copied(),
                        SearchReturn::Max => reply.max = found.last().copied(),
                        SearchReturn::Count => reply.count = Some(found.len() as u32),
                        SearchReturn::All => reply.all = SequenceSet::from_numbers(found.clone()),
                        SearchReturn::Save => {}
                    }
                }
                self.write_data(Data::ESearch(reply));
            }
        }
        Done::ok(if search.uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        })
    }
}

impl Session {
    /// The positions in the view of the messages matching `key`, ascending. `saved`
    /// stands in for `$` when given (SEARCH ... SAVE has taken the old result out of
    /// the view already). SORT and THREAD search with this too.
    ///
    /// Each message is first judged on what the view holds; only one the header or
    /// text keys could still decide (`UNSEEN FROM x` on an unseen message) has its
    /// body read.
    pub(crate) async fn search_indices(
        &mut self,
        key: &SearchKey,
        saved: Option<Vec<evermail_types::Uid>>,
    ) -> Result<Vec<usize>, CmdError> {
        let selected = self.selected_mut()?;
        let saved = saved.unwrap_or_else(|| selected.saved.clone());
        let recent = selected.recent.clone();
        let mut context = Context {
            exists: selected.exists(),
            largest_uid: selected.messages.last().map_or(0, |m| m.uid.get()),
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            saved: &saved,
            recent: &recent,
            indexed: None,
        };
        let mut hits = Vec::new();
        let mut undecided = Vec::new();
        for (i, m) in selected.messages.iter().enumerate() {
            match prefilter(key, i as u32 + 1, m, &context) {
                Some(true) => hits.push(i),
                Some(false) => {}
                None => undecided.push((i, m.clone())),
            }
        }
        // The text index is asked (and brought up to date) only when some message
        // is left for the keys it answers to decide.
        let mut indexable = Vec::new();
        text_keys(key, &mut indexable);
        let indexed = if undecided.is_empty() || indexable.is_empty() {
            None
        } else {
            self.search_text_index(key).await?
        };
        if let Some(index) = &indexed {
            context.indexed = Some(index);
            undecided.retain(|(i, m)| match prefilter(key, *i as u32 + 1, m, &context) {
                Some(true) => {
                    hits.push(*i);
                    false
                }
                Some(false) => false,
                None => true,
            });
        }
        let with_body =
            needs_body_text(key) && !indexed.as_ref().is_some_and(|i| i.answers_all(key));
        // Header keys alone are judged on the header cache, 500 messages per read,
        // parsing only the fields the keys name.
        let mut fields = Vec::new();
        header_fields(key, &mut fields);
        let mailbox = self.selected_mut()?.id;
        let load = |batch: &[(usize, MessageRecord)]| {
            let (mailstore, fields) = (self.mailstore.clone(), fields.clone());
            let messages: Vec<_> = batch.iter().map(|(_, m)| (m.uid, m.blob)).collect();
            tokio::spawn(async move {
                mailstore
                    .header_texts_in(mailbox, &messages, Some(&fields))
                    .await
            })
        };
        let batches: Vec<_> = undecided.chunks(if with_body { 1 } else { 500 }).collect();
        let mut pending = None;
        for (n, &batch) in batches.iter().enumerate() {
            let mut headers = if with_body {
                Default::default()
            } else {
                let current = pending.take().unwrap_or_else(|| load(batch));
                // The next batch is read from the database while this one is parsed
                // and judged.
                pending = batches.get(n + 1).map(|next| load(next));
                current.await.map_err(|e| {
                    MailError::new(ErrorKind::Unavailable, format!("header read task: {e}"))
                })??
            };
            for (i, m) in batch {
                let text = match headers.remove(&m.blob) {
                    Some(text) => text,
                    None => self.mailstore.message_text(m.blob, with_body).await?,
                };
                if matches(key, *i as u32 + 1, m, Some(&text), &context) {
                    hits.push(*i);
                }
                // A body two messages share is parsed once but judged for both.
                if !with_body {
                    headers.insert(m.blob, text);
                }
            }
        }
        hits.sort_unstable();
        Ok(hits)
    }
}

impl Session {
    /// Asks the node's text index for the keys of `key` it answers; `None` when there
    /// are none or the index is not available (the search then reads headers and
    /// bodies).
    async fn search_text_index(&mut self, key: &SearchKey) -> Result<Option<Indexed>, CmdError> {
        let mut keys = Vec::new();
        text_keys(key, &mut keys);
        let mut wanted: Vec<TextKey> = keys.into_iter().filter_map(Indexed::key).collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(None);
        }
        let account = self.account()?.id;
        let selected = self.selected_mut()?;
        let mailbox = selected.id;
        let view: Vec<_> = selected.messages.iter().map(|m| (m.uid, m.blob)).collect();
        let Some(hits) = self
            .mailstore
            .search_text(account, mailbox, &view, &wanted)
            .await?
        else {
            return Ok(None);
        };
        let answers = wanted
            .into_iter()
            .zip(hits.matches)
            .filter_map(|(key, uids)| Some((key, uids?)))
            .collect();
        Ok(Some(Indexed {
            answers,
            unindexed: hits.unindexed,
        }))
    }
}

/// `key` judged without the message's header and text: `None` when a header or text
/// key decides it.
fn prefilter(key: &SearchKey, seq: u32, m: &MessageRecord, cx: &Context<'_>) -> Option<bool> {
    match key {
        SearchKey::And(keys) => {
            let mut all = Some(true);
            for k in keys {
                match prefilter(k, seq, m, cx) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => all = None,
                }
            }
            all
        }
        SearchKey::Or(a, b) => match (prefilter(a, seq, m, cx), prefilter(b, seq, m, cx)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        SearchKey::Not(k) => prefilter(k, seq, m, cx).map(|b| !b),
        k if needs_text(k) => cx.indexed.and_then(|i| i.lookup(k, m.uid)),
        k => Some(matches(k, seq, m, None, cx)),
    }
}

/// SEARCH, SORT and THREAD know the charsets Rust strings are made of.
pub(crate) fn check_charset(charset: &str) -> Result<(), CmdError> {
    if matches!(charset, "UTF-8" | "US-ASCII") {
        return Ok(());
    }
    Err(CmdError::no(
        Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()]),
        format!("charset {charset} is not supported"),
    ))
}

/// Whether the criteria need the header or text of the messages.
fn needs_text(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_text),
        SearchKey::Or(a, b) => needs_text(a) || needs_text(b),
        SearchKey::Not(k) => needs_text(k),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

/// The header fields `key`'s header keys look at (SENT* read the Date field). BODY
/// and TEXT are not among them: without a body read they are the text index's.
fn header_fields(key: &SearchKey, into: &mut Vec<String>) {
    let name = match key {
        SearchKey::And(keys) => return keys.iter().for_each(|k| header_fields(k, into)),
        SearchKey::Or(a, b) => {
            header_fields(a, into);
            return header_fields(b, into);
        }
        SearchKey::Not(k) => return header_fields(k, into),
        SearchKey::From(_) => "from",
        SearchKey::To(_) => "to",
        SearchKey::Cc(_) => "cc",
        SearchKey::Bcc(_) => "bcc",
        SearchKey::Subject(_) => "subject",
        SearchKey::Header(name, _) => name,
        SearchKey::SentBefore(_) | SearchKey::SentOn(_) | SearchKey::SentSince(_) => "date",
        _ => return,
    };
    if !into.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        into.push(name.to_ascii_lowercase());
    }
}

/// Whether the criteria look into the body (BODY, TEXT), not just the header.
fn needs_body_text(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_body_text),
        SearchKey::Or(a, b) => needs_body_text(a) || needs_body_text(b),
        SearchKey::Not(k) => needs_body_text(k),
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        _ => false,
    }
}

/// Whether a MODSEQ key appears anywhere in the criteria.
fn has_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq { .. } => true,
        SearchKey::And(keys) => keys.iter().any(has_modseq),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::Not(k) => has_modseq(k),
        _ => false,
    }
}

/// Whether message `m` (sequence number `seq`) matches `key`. `text` is its
/// searchable text, loaded whenever the criteria need it.
fn matches(
    key: &SearchKey,
    seq: u32,
    m: &MessageRecord,
    text: Option<&MessageText>,
    cx: &Context<'_>,
) -> bool {
    let day = m.internal_date.div_euclid(86_400);
    // What the index answered, else the message's own text.
    let indexed = || cx.indexed.and_then(|i| i.lookup(key, m.uid));
    let header = |name: &str, needle: &str| {
        indexed().unwrap_or_else(|| text.is_some_and(|t| t.header_contains(name, needle)))
    };
    let sent = |test: fn(i64, i64) -> bool, d: &evermail_imap_proto::datetime::Date| {
        text.and_then(|t| t.sent_day)
            .is_some_and(|sent| test(sent, d.days_since_epoch()))
    };
    match key {
        SearchKey::All => true,
        SearchKey::And(keys) => keys.iter().all(|k| matches(k, seq, m, text, cx)),
        SearchKey::Or(a, b) => matches(a, seq, m, text, cx) || matches(b, seq, m, text, cx),
        SearchKey::Not(k) => !matches(k, seq, m, text, cx),
        SearchKey::SequenceSet(set) | SearchKey::Uid(set) if set.is_last_result() => {
            cx.saved.binary_search(&m.uid).is_ok()
        }
        SearchKey::SequenceSet(set) => set.contains(seq, cx.exists),
        SearchKey::Uid(set) => set.contains(m.uid.get(), cx.largest_uid),
        SearchKey::Flag(flag) => m.flags.contains(flag),
        SearchKey::NotFlag(flag) => !m.flags.contains(flag),
        SearchKey::Recent => cx.recent.contains(&m.uid),
        SearchKey::New => {
            cx.recent.contains(&m.uid) && !m.flags.contains(&evermail_types::Flag::Seen)
        }
        SearchKey::Old => !cx.recent.contains(&m.uid),
        // INTERNALDATE days are counted in UTC, the server's time zone for IMAP.
        SearchKey::Before(d) => day < d.days_since_epoch(),
        SearchKey::On(d) => day == d.days_since_epoch(),
        SearchKey::Since(d) => day >= d.days_since_epoch(),
        SearchKey::Larger(n) => m.size > *n,
        SearchKey::Smaller(n) => m.size < *n,
        SearchKey::ModSeq { mod_seq, .. } => m.modseq.0 >= *mod_seq,
        SearchKey::Younger(secs) => cx.now - m.internal_date <= i64::from(*secs),
        SearchKey::Older(secs) => cx.now - m.internal_date > i64::from(*secs),
        SearchKey::From(s) => header("from", s),
        SearchKey::To(s) => header("to", s),
        SearchKey::Cc(s) => header("cc", s),
        SearchKey::Bcc(s) => header("bcc", s),
        SearchKey::Subject(s) => header("subject", s),
        SearchKey::Header(name, s) => header(name, s),
        SearchKey::Body(s) => indexed().unwrap_or_else(|| text.is_some_and(|t| t.body_contains(s))),
        SearchKey::Text(s) => indexed().unwrap_or_else(|| text.is_some_and(|t| t.text_contains(s))),
        // The Date: field's day as written, time and zone disregarded.
        SearchKey::SentBefore(d) => sent(|a, b| a < b, d),
        SearchKey::SentOn(d) => sent(|a, b| a == b, d),
        SearchKey::SentSince(d) => sent(|a, b| a >= b, d),
        SearchKey::EmailId(id) => super::objectid::email_id(m.blob) == *id,
        // No message is in a stored thread (THREADID is NIL).
        SearchKey::ThreadId(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evermail_types::{BlobId, Flag, Flags, ModSeq, Uid};

    fn record(uid: u32, flags: &[Flag], size: u64) -> MessageRecord {
        MessageRecord {
            uid: Uid::new(uid).unwrap(),
            modseq: ModSeq(u64::from(uid)),
            flags: flags.iter().cloned().collect::<Flags>(),
            size,
            internal_date: 86_400 * 10,
            blob: BlobId([0; 32]),
        }
    }

    #[test]
    fn evaluates_flag_and_number_keys() {
        let saved = [Uid::new(5).unwrap(), Uid::new(7).unwrap()];
        let recent = saved.iter().copied().collect();
        let cx = Context {
            exists: 3,
            largest_uid: 7,
            now: 86_400 * 11,
            saved: &saved,
            recent: &recent,
            indexed: None,
        };
        let messages = [
            record(2, &[Flag::Seen], 100),
            record(5, &[Flag::Deleted], 2000),
            record(7, &[Flag::Seen, Flag::Flagged], 50),
        ];
        let not = |k| SearchKey::Not(Box::new(k));
        let or = |a, b| SearchKey::Or(Box::new(a), Box::new(b));
        let cases = [
            (SearchKey::All, vec![1, 2, 3]),
            (SearchKey::Flag(Flag::Seen), vec![1, 3]),
            (SearchKey::NotFlag(Flag::Seen), vec![2]),
            (not(SearchKey::Flag(Flag::Deleted)), vec![1, 3]),
            (
                or(
                    SearchKey::Flag(Flag::Flagged),
                    SearchKey::Flag(Flag::Deleted),
                ),
                vec![2, 3],
            ),
            (SearchKey::Uid("5:*".parse().unwrap()), vec![2, 3]),
            (SearchKey::SequenceSet("*".parse().unwrap()), vec![3]),
            (
                SearchKey::And(vec![SearchKey::Larger(60), SearchKey::Smaller(1000)]),
                vec![1],
            ),
            // UIDs 5 and 7 are recent; 7 is seen.
            (SearchKey::Recent, vec![2, 3]),
            (SearchKey::New, vec![2]),
            (SearchKey::Old, vec![1]),
            (SearchKey::SequenceSet("$".parse().unwrap()), vec![2, 3]),
            (not(SearchKey::Uid("$".parse().unwrap())), vec![1]),
            (SearchKey::Younger(86_400), vec![1, 2, 3]),
            (SearchKey::Older(86_400), vec![]),
        ];
        for (key, want) in cases {
            let got: Vec<u32> = messages
                .iter()
                .enumerate()
                .filter(|(i, m)| matches(&key, *i as u32 + 1, m, None, &cx))
                .map(|(i, _)| i as u32 + 1)
                .collect();
            assert_eq!(got, want, "{key:?}");
        }
    }

    #[test]
    fn prefilter_reads_bodies_only_when_text_decides() {
        let cx = Context {
            exists: 2,
            largest_uid: 5,
            now: 0,
            saved: &[],
            recent: &Default::default(),
            indexed: None,
        };
        let seen = record(2, &[Flag::Seen], 100);
        let unseen = record(5, &[], 100);
        let from = || SearchKey::From("x".into());
        let and = SearchKey::And(vec![SearchKey::Flag(Flag::Seen), from()]);
        let or = SearchKey::Or(Box::new(SearchKey::Flag(Flag::Seen)), Box::new(from()));
        let not = SearchKey::Not(Box::new(and.clone()));
        let cases = [
            (&and, &unseen, Some(false)),
            (&and, &seen, None),
            (&or, &seen, Some(true)),
            (&or, &unseen, None),
            (&not, &unseen, Some(true)),
            (&not, &seen, None),
        ];
        for (key, m, want) in cases {
            assert_eq!(prefilter(key, 1, m, &cx), want, "{key:?} on {:?}", m.flags);
        }
    }
}
