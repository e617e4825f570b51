//! SORT and THREAD (RFC 5256) and their UID forms: SEARCH's criteria, then an order
//! over each match's header fields (`Mailstore::header_texts`, parsed from the header
//! cache, or from the verified body where a header is not cached; there is no sort
//! index yet, so this parses every matching message's header).

use std::cmp::Ordering;

use evermail_imap_proto::command::{Sort, SortKey, Thread, ThreadAlgorithm};
use evermail_imap_proto::response::Data;
use evermail_mailbox::{HeaderFields, MessageRecord};

use super::search::check_charset;
use super::thread::{Threadable, base_subject, ordered_subject, references};
use crate::session::{CmdResult, Done, Session};

/// One matching message with what sorting it needs: its header fields, not the whole
/// header, and the base subject worked out once rather than in every comparison.
struct Candidate {
    seq: u32,
    record: MessageRecord,
    fields: HeaderFields,
    base_subject: String,
}

impl Candidate {
    /// RFC 5256: the Date: field, or the internal date when there is none.
    fn sent(&self) -> i64 {
        self.fields.sent_at.unwrap_or(self.record.internal_date)
    }

    fn number(&self, uid: bool) -> u32 {
        if uid { self.record.uid.get() } else { self.seq }
    }
}

impl Session {
    pub(crate) async fn sort(&mut self, sort: Sort) -> CmdResult {
        check_charset(&sort.charset)?;
        let mut candidates = self.candidates(&sort.key).await?;
        candidates.sort_by(|a, b| {
            sort.criteria
                .iter()
                .map(|c| {
                    let order = compare(c.key, a, b);
                    if c.reverse { order.reverse() } else { order }
                })
                .find(|o| o.is_ne())
                // Equal by every criterion: sequence order.
                .unwrap_or_else(|| a.seq.cmp(&b.seq))
        });
        let numbers = candidates.iter().map(|c| c.number(sort.uid)).collect();
        self.write_data(Data::Sort(numbers));
        Done::ok(if sort.uid {
            "UID SORT completed"
        } else {
            "SORT completed"
        })
    }

    pub(crate) async fn thread(&mut self, thread: Thread) -> CmdResult {
        check_charset(&thread.charset)?;
        let candidates = self.candidates(&thread.key).await?;
        let threadable: Vec<Threadable> = candidates
            .iter()
            .map(|c| Threadable {
                number: c.number(thread.uid),
                sent: c.sent(),
                subject: c.fields.subject.clone().unwrap_or_default(),
                message_id: c.fields.message_id.clone(),
                references: c.fields.references.clone(),
            })
            .collect();
        let trees = match thread.algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&threadable),
            ThreadAlgorithm::References => references(&threadable),
        };
        self.write_data(Data::Thread(trees));
        Done::ok(if thread.uid {
            "UID THREAD completed"
        } else {
            "THREAD completed"
        })
    }

    /// The messages matching `key`, in sequence order, with their header fields.
    async fn candidates(
        &mut self,
        key: &evermail_imap_proto::command::SearchKey,
    ) -> Result<Vec<Candidate>, crate::session::CmdError> {
        let indices = self.search_indices(key, None).await?;
        let selected = self.selected_mut()?;
        let mailbox = selected.id;
        let records: Vec<(u32, MessageRecord)> = indices
            .iter()
            .map(|&i| (i as u32 + 1, selected.messages[i].clone()))
            .collect();
        let mut out = Vec::with_capacity(records.len());
        // SORT and THREAD look at header fields only: the header cache, 500 per read.
        let mut texts = std::collections::HashMap::new();
        for batch in records.chunks(500) {
            let messages: Vec<_> = batch.iter().map(|(_, r)| (r.uid, r.blob)).collect();
            let batch_texts = self
                .mailstore
                .header_texts_in(mailbox, &messages, None)
                .await?;
            texts.extend(batch_texts.into_iter().map(|(id, t)| (id, t.fields)));
        }
        for (seq, record) in records {
            let fields = match texts.get(&record.blob) {
                Some(fields) => fields.clone(),
                None => {
                    self.mailstore
                        .message_text(record.blob, false)
                        .await?
                        .fields
                }
            };
            let base_subject = base_subject(fields.subject.as_deref().unwrap_or("")).0;
            out.push(Candidate {
                seq,
                record,
                fields,
                base_subject,
            });
        }
        Ok(out)
    }
}

/// One sort key's order (RFC 5256 section 3). Missing addresses and subjects sort as
/// empty strings, first.
fn compare(key: SortKey, a: &Candidate, b: &Candidate) -> Ordering {
    let text = |f: fn(&HeaderFields) -> &Option<String>| {
        let (x, y) = (f(&a.fields), f(&b.fields));
        x.as_deref().unwrap_or("").cmp(y.as_deref().unwrap_or(""))
    };
    match key {
        // Internal dates have whole seconds; within one, UIDs give the arrival order.
        SortKey::Arrival => {
            (a.record.internal_date, a.record.uid).cmp(&(b.record.internal_date, b.record.uid))
        }
        SortKey::Date => a.sent().cmp(&b.sent()),
        SortKey::Size => a.record.size.cmp(&b.record.size),
        SortKey::Subject => a.base_subject.cmp(&b.base_subject),
        SortKey::From => text(|t| &t.from_mailbox),
        SortKey::To => text(|t| &t.to_mailbox),
        SortKey::Cc => text(|t| &t.cc_mailbox),
    }
}
