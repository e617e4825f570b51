//! FETCH and UID FETCH.
//!
//! A message's body is read (and hash-verified by the mail model) only when an item
//! needs its bytes, and its stored structure only when an item needs the MIME tree;
//! `FETCH 1:* (UID FLAGS)` touches neither. Structures and cached header sections are
//! loaded for 500 messages at a time in one metadata read; header items (RFC822.HEADER,
//! BODY[HEADER], BODY[HEADER.FIELDS ...]) are served from the cached header, which was
//! cut from the verified body at delivery, so they read no body. Responses stream out
//! as they are built. A body of 1 MiB or more is read into a verified spool file and
//! served from its memory map, its literals written in pieces (`large.rs`); only
//! BINARY of a part with a transfer encoding decodes into memory.

mod large;
mod section;

use std::borrow::Cow;

use evermail_imap_proto::command::{Fetch, FetchAttr, Section, SectionText};
use evermail_imap_proto::response::{Code, FetchItem, FetchResponse};
use evermail_mailbox::{FlagChange, MessageStructure};
use evermail_types::{Flag, Flags};

use super::objectid::email_id;
use crate::session::{CmdError, CmdResult, Done, Session};
use section::{apply_partial, binary_data, filter_header, section_data};

impl Session {
    pub(crate) async fn fetch(&mut self, fetch: Fetch) -> CmdResult {
        let account = self.account()?;
        self.selected_mut()?;
        // RFC 7162 section 3.2.6: VANISHED needs ENABLE QRESYNC first.
        if fetch.vanished && !self.enabled.qresync {
            return Err(CmdError::bad("QRESYNC is not enabled"));
        }
        let mut attrs = fetch.attrs;
        // CHANGEDSINCE and MODSEQ are CONDSTORE enabling; CHANGEDSINCE implies MODSEQ.
        if fetch.changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq) {
            self.enable_condstore();
            if !attrs.contains(&FetchAttr::ModSeq) {
                attrs.push(FetchAttr::ModSeq);
            }
        }
        if let (true, Some(since)) = (fetch.vanished, fetch.changed_since) {
            self.vanished_earlier(account.id, &fetch.set, since).await?;
        }
        let condstore = self.enabled.condstore;
        let selected = self.selected_mut()?;
        let mut indices = selected.resolve(&fetch.set, fetch.uid)?;
        if let Some(since) = fetch.changed_since {
            indices.retain(|&i| selected.messages[i].modseq.0 > since);
        }
        let (mailbox, read_only) = (selected.id, selected.read_only);
        // RFC 9051 section 6.4.9: UID FETCH always reports the UID.
        if fetch.uid && !attrs.contains(&FetchAttr::Uid) {
            attrs.insert(0, FetchAttr::Uid);
        }
        // Items that need the body's bytes beyond its header; the header items are
        // served from the header cache when the body's header is cached.
        let needs_body = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Rfc822
                    | FetchAttr::Rfc822Text
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize { .. }
            ) || matches!(a, FetchAttr::BodySection { section, .. } if !is_top_header(section))
        });
        let wants_header = attrs.iter().any(|a| {
            matches!(a, FetchAttr::Rfc822Header)
                || matches!(a, FetchAttr::BodySection { section, .. } if is_top_header(section))
        });
        let needs_parsed_structure = attrs.iter().any(|a| {
            matches!(
                a,
                FetchAttr::Envelope
                    | FetchAttr::Body
                    | FetchAttr::BodyStructure
                    | FetchAttr::Rfc822Text
            ) || matches!(a, FetchAttr::BodySection { section, .. }
                    if *section != Section::default() && !is_top_header(section))
                || matches!(a, FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part }
                    if !part.is_empty())
        });
        let needs_structure = wants_header || needs_parsed_structure;

        // Set \Seen before answering, so the FLAGS in the same response are the new ones.
        let mut newly_seen = std::collections::HashSet::new();
        if !read_only && attrs.iter().any(FetchAttr::sets_seen) {
            let selected = self.selected_mut()?;
            let unseen: Vec<_> = indices
                .iter()
                .map(|&i| &selected.messages[i])
                .filter(|m| !m.flags.contains(&Flag::Seen))
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let seen: Flags = [Flag::Seen].into_iter().collect();
                let changed = self
                    .mailstore
                    .store_flags(account.id, mailbox, &unseen, FlagChange::Add, &seen)
                    .await?;
                let selected = self.selected_mut()?;
                for m in changed {
                    if let Some(i) = selected.index_of(m.uid) {
                        newly_seen.insert(m.uid);
                        selected.messages[i].flags = m.flags;
                        selected.messages[i].modseq = m.modseq;
                    }
                }
            }
        }

        let mut failed = 0usize;
        let mut undecodable = 0usize;
        // Header items alone: the structure is built only where the header is not
        // cached.
        let with_structure = needs_parsed_structure || needs_body;
        let load = |mailstore: &evermail_mailbox::Mailstore, messages: Vec<_>| {
            let mailstore = mailstore.clone();
            tokio::spawn(async move {
                if with_structure {
                    let blobs: Vec<_> = messages.iter().map(|&(_, blob)| blob).collect();
                    mailstore.summaries(&blobs, true).await
                } else {
                    mailstore.header_summaries(mailbox, &messages).await
                }
            })
        };
        let blobs_of = |selected: Option<&crate::state::Selected>, batch: &[usize]| {
            selected.map(|s| {
                batch
                    .iter()
                    .map(|&i| (s.messages[i].uid, s.messages[i].blob))
                    .collect::<Vec<_>>()
            })
        };
        let batches: Vec<&[usize]> = indices.chunks(FETCH_BATCH).collect();
        let mut pending = None;
        for (n, &batch) in batches.iter().enumerate() {
            // Structures and cached headers of the whole batch in one metadata read;
            // the next batch's is read while this one is answered.
            let summaries = if needs_structure {
                let current = match pending.take() {
                    Some(current) => current,
                    None => match blobs_of(self.selected.as_ref(), batch) {
                        Some(blobs) => load(&self.mailstore, blobs),
                        None => break,
                    },
                };
                pending = batches
                    .get(n + 1)
                    .and_then(|next| blobs_of(self.selected.as_ref(), next))
                    .map(|blobs| load(&self.mailstore, blobs));
                current.await.map_err(|e| {
                    evermail_mailbox::MailError::new(
                        evermail_mailbox::ErrorKind::Unavailable,
                        format!("structure read task: {e}"),
                    )
                })??
            } else {
                Default::default()
            };
            for &i in batch {
                let Some((record, recent)) = self
                    .selected
                    .as_ref()
                    .map(|s| (s.messages[i].clone(), s.recent.contains(&s.messages[i].uid)))
                else {
                    break;
                };
                // A body two messages share (a COPY) is in the batch's summaries once.
                let (structure, header) = if needs_structure {
                    match summaries.get(&record.blob) {
                        Some(s) => (s.structure.as_ref(), s.header.clone()),
                        None => {
                            tracing::error!(uid = record.uid.get(), "cannot read structure");
                            failed += 1;
                            continue;
                        }
                    }
                } else {
                    (None, None)
                };
                let body = if needs_body || (wants_header && header.is_none()) {
                    // A large body is a verified spool file read through its map.
                    match self.mailstore.read_body(record.blob, record.size).await {
                        Ok(b) => Some(b),
                        Err(error) => {
                            tracing::error!(%error, uid = record.uid.get(), "cannot read body");
                            failed += 1;
                            continue;
                        }
                    }
                } else {
                    None
                };
                // Without the body, header items come from the cached header.
                let header = if body.is_none() { header } else { None };
                let body = body.as_deref().unwrap_or_default();
                // Section data first: FETCH items borrow it.
                let data: Result<Vec<Option<Cow<'_, [u8]>>>, String> = attrs
                    .iter()
                    .map(|a| match header.as_deref() {
                        Some(header) if is_header_item(a) => Ok(header_item_data(a, header)),
                        _ => item_data(a, body, structure),
                    })
                    .collect();
                let data = match data {
                    Ok(data) => data,
                    Err(error) => {
                        tracing::debug!(%error, uid = record.uid.get(), "BINARY cannot decode");
                        undecodable += 1;
                        continue;
                    }
                };
                let mut items = Vec::with_capacity(attrs.len() + 1);
                for (attr, data) in attrs.iter().zip(&data) {
                    let data = data.as_deref();
                    items.push(match attr {
                        FetchAttr::Uid => FetchItem::Uid(record.uid.get()),
                        FetchAttr::Flags => FetchItem::Flags {
                            flags: &record.flags,
                            recent,
                        },
                        FetchAttr::InternalDate => FetchItem::InternalDate(record.internal_date),
                        FetchAttr::Rfc822Size => FetchItem::Rfc822Size(record.size),
                        FetchAttr::ModSeq => FetchItem::ModSeq(record.modseq.0),
                        FetchAttr::EmailId => FetchItem::EmailId(email_id(record.blob)),
                        FetchAttr::ThreadId => FetchItem::ThreadId(None),
                        // `structure` is loaded whenever one of these is asked for.
                        FetchAttr::Envelope => match &structure {
                            Some(s) => FetchItem::Envelope(&s.envelope),
                            None => continue,
                        },
                        FetchAttr::Body => match &structure {
                            Some(s) => FetchItem::Body(&s.body),
                            None => continue,
                        },
                        FetchAttr::BodyStructure => match &structure {
                            Some(s) => FetchItem::BodyStructure(&s.body),
                            None => continue,
                        },
                        FetchAttr::Rfc822 => FetchItem::Rfc822(data),
                        FetchAttr::Rfc822Header => FetchItem::Rfc822Header(data),
                        FetchAttr::Rfc822Text => FetchItem::Rfc822Text(data),
                        FetchAttr::BodySection {
                            section, partial, ..
                        } => FetchItem::BodySection {
                            section: section.clone(),
                            origin: partial.map(|p| p.offset),
                            data: data.map(|d| apply_partial(d, *partial)),
                        },
                        FetchAttr::Binary { part, partial, .. } => FetchItem::Binary {
                            part: part.clone(),
                            origin: partial.map(|p| p.offset),
                            data: data.map(|d| apply_partial(d, *partial)),
                        },
                        FetchAttr::BinarySize { part } => match data {
                            Some(d) => FetchItem::BinarySize {
                                part: part.clone(),
                                size: d.len() as u64,
                            },
                            // A part that does not exist has no size to give.
                            None => continue,
                        },
                    });
                }
                // RFC 9051 section 6.4.5: when a fetch sets \Seen, the new flags go in the
                // same response; with CONDSTORE so do the UID and new MODSEQ (RFC 7162
                // section 3.1).
                if newly_seen.contains(&record.uid) {
                    if !attrs.contains(&FetchAttr::Flags) {
                        items.push(FetchItem::Flags {
                            flags: &record.flags,
                            recent,
                        });
                    }
                    if condstore && !attrs.contains(&FetchAttr::Uid) {
                        items.push(FetchItem::Uid(record.uid.get()));
                    }
                    if condstore && !attrs.contains(&FetchAttr::ModSeq) {
                        items.push(FetchItem::ModSeq(record.modseq.0));
                    }
                }
                let response = FetchResponse {
                    seq: i as u32 + 1,
                    items,
                };
                self.write_fetch(&response).await?;
            }
        }
        if failed > 0 {
            return Err(CmdError::no(
                Code::ServerBug,
                format!("{failed} messages could not be read"),
            ));
        }
        // RFC 3516 section 4.2: a part the server cannot decode is refused this way.
        if undecodable > 0 {
            return Err(CmdError::no(
                Code::UnknownCte,
                format!("{undecodable} messages have a part that cannot be decoded"),
            ));
        }
        Done::ok(if fetch.uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        })
    }
}

impl Session {
    /// `VANISHED (EARLIER)` for the UIDs of `set` expunged after `since` (QRESYNC's
    /// `UID FETCH ... (CHANGEDSINCE n VANISHED)`, RFC 7162 section 3.2.6), sent before
    /// the FETCH responses.
    async fn vanished_earlier(
        &mut self,
        account: evermail_types::AccountId,
        set: &evermail_imap_proto::SequenceSet,
        since: u64,
    ) -> Result<(), CmdError> {
        let selected = self.selected_mut()?;
        let (id, largest) = (selected.id, super::select::highest_uid_bound(selected));
        let changes = self
            .mailstore
            .changes_since(account, id, evermail_types::ModSeq(since))
            .await?;
        let uids = changes
            .expunged
            .iter()
            .map(|u| u.get())
            .filter(|&u| set.contains(u, largest));
        if let Some(uids) = evermail_imap_proto::SequenceSet::from_numbers(uids) {
            self.write_data(evermail_imap_proto::response::Data::Vanished {
                earlier: true,
                uids,
            });
        }
        Ok(())
    }
}

/// How many messages FETCH loads structures and cached headers for at once.
const FETCH_BATCH: usize = 500;

/// Whether `section` is the top-level header, or some of its fields: what the header
/// cache holds.
fn is_top_header(section: &Section) -> bool {
    section.part.is_empty()
        && matches!(
            section.text,
            Some(
                SectionText::Header
                    | SectionText::HeaderFields(_)
                    | SectionText::HeaderFieldsNot(_)
            )
        )
}

fn is_header_item(attr: &FetchAttr) -> bool {
    matches!(attr, FetchAttr::Rfc822Header)
        || matches!(attr, FetchAttr::BodySection { section, .. } if is_top_header(section))
}

/// The bytes a header item sends, from the cached header section: the same bytes
/// `body_item_data` cuts from the body at the root part's offsets, which is what was
/// cached at delivery.
fn header_item_data<'a>(attr: &FetchAttr, header: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    let text = match attr {
        FetchAttr::Rfc822Header => &SectionText::Header,
        FetchAttr::BodySection { section, .. } => section.text.as_ref()?,
        _ => return None,
    };
    match text {
        SectionText::Header => Some(Cow::Borrowed(header)),
        SectionText::HeaderFields(names) => Some(Cow::Owned(filter_header(header, names, true))),
        SectionText::HeaderFieldsNot(names) => {
            Some(Cow::Owned(filter_header(header, names, false)))
        }
        _ => None,
    }
}

/// The bytes an item sends, for the items that send message data; `Err` for a BINARY
/// part that cannot be decoded.
fn item_data<'a>(
    attr: &FetchAttr,
    body: &'a [u8],
    structure: Option<&MessageStructure>,
) -> Result<Option<Cow<'a, [u8]>>, String> {
    if let FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part } = attr {
        return binary_data(body, structure.map(|s| &s.body), part);
    }
    Ok(body_item_data(attr, body, structure))
}

fn body_item_data<'a>(
    attr: &FetchAttr,
    body: &'a [u8],
    structure: Option<&MessageStructure>,
) -> Option<Cow<'a, [u8]>> {
    let section = |text: Option<SectionText>| {
        let section = Section {
            part: Vec::new(),
            text,
        };
        section_data(body, &structure?.body, &section)
    };
    match attr {
        FetchAttr::Rfc822 => Some(Cow::Borrowed(body)),
        FetchAttr::Rfc822Header => section(Some(SectionText::Header)),
        FetchAttr::Rfc822Text => section(Some(SectionText::Text)),
        FetchAttr::BodySection { section: s, .. } if *s == Section::default() => {
            Some(Cow::Borrowed(body))
        }
        FetchAttr::BodySection { section: s, .. } => section_data(body, &structure?.body, s),
        _ => None,
    }
}
