//! A node-local text index of one mailbox, for IMAP SEARCH BODY, TEXT and the header
//! keys (SUBJECT, FROM, TO, CC, BCC, HEADER): the searchable text of each message
//! (header fields and body text, lower-cased, as `evermail_mailbox::MessageText` makes
//! it) indexed by character trigrams with tantivy, and stored, so a search is a
//! posting-list intersection followed by an exact check of the few candidates.
//!
//! Header fields are indexed twice: as the `head` field's trigrams (names and values,
//! for TEXT) and as per-field terms `name:trigram` of each value (for a header key,
//! so `SUBJECT report` is not narrowed to every message whose From holds "report").
//! Per-field terms in one field rather than a tantivy field per header name keep the
//! schema fixed while serving `HEADER` of any field name.
//!
//! IMAP matches by case-insensitive substring (RFC 9051 section 6.4.4), which a word
//! index cannot answer ("port" is in "report"). Every substring of three characters or
//! more contains all the trigrams of the string sought, so the documents holding all
//! of them are a superset of the matches; [`TextIndex::candidates`] returns them with
//! their stored text and the caller keeps those that really contain the string.
//!
//! The index is a cache, never the truth: it knows nothing of mailboxes, accounts or
//! expunges, only UIDs and text; `evermail_mailbox` decides what to add and remove, and
//! deletes the directory when anything here fails. It must not read message bodies or
//! decide what matches.
//!
//! # Example
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use evermail_fts::{IndexedText, Scope, TextIndex};
//! let mut index = TextIndex::open(dir.path()).unwrap();
//! index
//!     .add(IndexedText {
//!         uid: 7,
//!         headers: vec![("subject".into(), "quarterly report".into())],
//!         body: "see the attached figures".into(),
//!     })
//!     .unwrap();
//! index.commit().unwrap();
//! let found = index.candidates(&Scope::Text, "report", |_| true).unwrap().unwrap();
//! assert_eq!(found.iter().map(|t| t.uid).collect::<Vec<_>>(), [7]);
//! let subject = Scope::Header("subject".into());
//! let found = index.candidates(&subject, "report", |_| true).unwrap().unwrap();
//! assert_eq!(found.len(), 1);
//! let from = Scope::Header("from".into());
//! assert!(index.candidates(&from, "report", |_| true).unwrap().unwrap().is_empty());
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{NgramTokenizer, PreTokenizedString, Token};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// The shortest string the index can narrow a search for; shorter ones have no
/// trigram, so every message is a candidate and the caller should scan instead.
pub const MIN_CHARS: usize = 3;

/// The writer's memory budget: the most it buffers before writing a segment. Small,
/// since a node may update many users' indexes; tantivy's minimum is 15 MB.
const WRITER_HEAP_BYTES: usize = 32 * 1024 * 1024;

/// At most this many trigrams of a long search string are looked up: a few already
/// leave few candidates, and each costs a posting-list intersection.
const MAX_QUERY_TRIGRAMS: usize = 24;

const TOKENIZER: &str = "trigram";

/// The searchable text of one message, as stored in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedText {
    pub uid: u32,
    /// (field name, value) of the header, in order, as the caller keeps them.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Which text a search looks in: IMAP BODY, TEXT or one header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The body text only.
    Body,
    /// The header fields (names and values) and the body text.
    Text,
    /// The values of the header fields of this name (lower case).
    Header(String),
}

#[derive(Debug, thiserror::Error)]
#[error("text index {}: {source}", dir.display())]
pub struct FtsError {
    dir: PathBuf,
    #[source]
    source: tantivy::TantivyError,
}

#[derive(Clone, Copy)]
struct Fields {
    uid: Field,
    head: Field,
    body: Field,
    /// `name:trigram` of every header field's value, not stored.
    field: Field,
}

/// One mailbox's text index in a directory of its own. One value per directory and
/// process: it holds the directory's only writer while it has uncommitted changes.
pub struct TextIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The UIDs of the committed and pending documents.
    uids: BTreeSet<u32>,
    /// The UIDs of the committed documents: what searches see.
    committed: BTreeSet<u32>,
    writer: Option<IndexWriter<TantivyDocument>>,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Indexed so a UID can be deleted by term; fast so a hit's UID is read without
    // touching the document store.
    let uid = builder.add_u64_field("uid", INDEXED | FAST);
    // Documents only, no frequencies or positions: a trigram is either there or not.
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_stored();
    let head = builder.add_text_field("head", text.clone());
    let body = builder.add_text_field("body", text);
    // Pre-tokenized by `add`, so the tokenizer named here is never run.
    let per_field = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER)
            .set_index_option(IndexRecordOption::Basic),
    );
    let field = builder.add_text_field("field", per_field);
    (
        builder.build(),
        Fields {
            uid,
            head,
            body,
            field,
        },
    )
}

/// The term of the per-field trigram `trigram` of field `name`. A field name has no
/// colon (RFC 5322 section 3.6.8), so no two (name, trigram) pairs share a term.
fn field_term(name: &str, trigram: &str) -> String {
    format!("{name}:{trigram}")
}

impl TextIndex {
    /// Opens the index in `dir`, creating the directory and an empty index when there
    /// is none. An index of another schema (an older build's) is deleted and an
    /// empty one made in its place: it is a cache, and reading it with this build's
    /// fields would misread it.
    pub fn open(dir: &Path) -> Result<TextIndex, FtsError> {
        let fail = |source| FtsError {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.into()))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| fail(e.into()))?;
        let index = if Index::exists(&directory).map_err(|e| fail(e.into()))? {
            let found = Index::open(directory).map_err(fail)?;
            if found.schema() == schema {
                found
            } else {
                drop(found);
                std::fs::remove_dir_all(dir).map_err(|e| fail(e.into()))?;
                std::fs::create_dir_all(dir).map_err(|e| fail(e.into()))?;
                let directory = MmapDirectory::open(dir).map_err(|e| fail(e.into()))?;
                Index::create(directory, schema, Default::default()).map_err(fail)?
            }
        } else {
            Index::create(directory, schema, Default::default()).map_err(fail)?
        };
        // Text is lower-cased before it gets here, so trigrams are taken as written;
        // they run across spaces and punctuation, which a search string may contain.
        let trigrams = NgramTokenizer::new(MIN_CHARS, MIN_CHARS, false).map_err(fail)?;
        index.tokenizers().register(TOKENIZER, trigrams);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(fail)?;
        let mut opened = TextIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            uids: BTreeSet::new(),
            committed: BTreeSet::new(),
            writer: None,
        };
        opened.uids = opened.read_committed_uids().map_err(fail)?;
        opened.committed = opened.uids.clone();
        Ok(opened)
    }

    fn fail(&self, source: tantivy::TantivyError) -> FtsError {
        FtsError {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Whether the index directory is still there (an operator may delete it at any
    /// time; the open files then live on, but nothing can be committed).
    pub fn exists(&self) -> bool {
        self.dir.join("meta.json").exists()
    }

    fn read_committed_uids(&self) -> tantivy::Result<BTreeSet<u32>> {
        let searcher = self.reader.searcher();
        let mut uids = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let column = segment.fast_fields().u64("uid")?;
            for doc in segment.doc_ids_alive() {
                if let Some(uid) = column.first(doc) {
                    uids.insert(uid as u32);
                }
            }
        }
        Ok(uids)
    }

    /// The UIDs in the index, including those added or removed since the last commit.
    pub fn uids(&self) -> &BTreeSet<u32> {
        &self.uids
    }

    /// The UIDs as of the last commit: the documents searches find.
    pub fn committed(&self) -> &BTreeSet<u32> {
        &self.committed
    }

    fn writer(&mut self) -> Result<&IndexWriter<TantivyDocument>, FtsError> {
        if self.writer.is_none() {
            let writer = self
                .index
                .writer_with_num_threads(1, WRITER_HEAP_BYTES)
                .map_err(|e| self.fail(e))?;
            self.writer = Some(writer);
        }
        Ok(self.writer.as_ref().expect("set above"))
    }

    /// Adds a message's text; seen by searches after the next [`TextIndex::commit`].
    /// A UID already in the index is left as it is (a message's text never changes).
    pub fn add(&mut self, text: IndexedText) -> Result<(), FtsError> {
        if self.uids.contains(&text.uid) {
            return Ok(());
        }
        let fields = self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_u64(fields.uid, u64::from(text.uid));
        // Name and value alternate, each a value of its own, so no trigram spans two
        // fields and the pairs come back in order.
        let mut per_field = BTreeSet::new();
        for (name, value) in &text.headers {
            doc.add_text(fields.head, name);
            doc.add_text(fields.head, value);
            for trigram in all_trigrams(value) {
                per_field.insert(field_term(name, &trigram));
            }
        }
        let tokens = per_field
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token {
                position,
                text,
                ..Token::default()
            })
            .collect();
        doc.add_pre_tokenized_text(
            fields.field,
            PreTokenizedString {
                text: String::new(),
                tokens,
            },
        );
        doc.add_text(fields.body, &text.body);
        self.writer()?.add_document(doc).map_err(|e| self.fail(e))?;
        self.uids.insert(text.uid);
        Ok(())
    }

    /// Removes a message (expunged); seen after the next commit.
    pub fn remove(&mut self, uid: u32) -> Result<(), FtsError> {
        if !self.uids.contains(&uid) {
            return Ok(());
        }
        let term = Term::from_field_u64(self.fields.uid, u64::from(uid));
        self.writer()?.delete_term(term);
        self.uids.remove(&uid);
        Ok(())
    }

    /// Makes what was added and removed durable and searchable, waits for the segment
    /// merges it set off, and lets the writer (and its memory) go.
    pub fn commit(&mut self) -> Result<(), FtsError> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        writer.commit().map_err(|e| self.fail(e))?;
        writer.wait_merging_threads().map_err(|e| self.fail(e))?;
        self.reader.reload().map_err(|e| self.fail(e))?;
        self.committed.clone_from(&self.uids);
        Ok(())
    }

    /// The committed documents that may contain `needle` (lower-cased here) in
    /// `scope` and whose UID passes `wanted`, with their stored text; `None` when the
    /// needle is shorter than [`MIN_CHARS`] and so cannot narrow anything. The caller
    /// checks each candidate: this is a superset of the matches.
    pub fn candidates(
        &self,
        scope: &Scope,
        needle: &str,
        wanted: impl Fn(u32) -> bool,
    ) -> Result<Option<Vec<IndexedText>>, FtsError> {
        let trigrams = trigrams(&needle.to_lowercase());
        if trigrams.is_empty() {
            return Ok(None);
        }
        let all_in_terms = |field: Field, name: Option<&str>| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                trigrams
                    .iter()
                    .map(|t| {
                        let term = match name {
                            Some(name) => Term::from_field_text(field, &field_term(name, t)),
                            None => Term::from_field_text(field, t),
                        };
                        let query: Box<dyn Query> =
                            Box::new(TermQuery::new(term, IndexRecordOption::Basic));
                        (Occur::Must, query)
                    })
                    .collect(),
            ))
        };
        let all_in = |field: Field| all_in_terms(field, None);
        let query: Box<dyn Query> = match scope {
            Scope::Body => all_in(self.fields.body),
            Scope::Text => Box::new(BooleanQuery::new(vec![
                (Occur::Should, all_in(self.fields.head)),
                (Occur::Should, all_in(self.fields.body)),
            ])),
            Scope::Header(name) => all_in_terms(self.fields.field, Some(&name.to_lowercase())),
        };
        let searcher = self.reader.searcher();
        let hits = searcher
            .search(&query, &DocSetCollector)
            .map_err(|e| self.fail(e))?;
        let mut found = Vec::new();
        for hit in hits {
            let segment = searcher.segment_reader(hit.segment_ord);
            let column = segment.fast_fields().u64("uid").map_err(|e| self.fail(e))?;
            let Some(uid) = column.first(hit.doc_id).map(|u| u as u32) else {
                continue;
            };
            if !wanted(uid) {
                continue;
            }
            let doc: TantivyDocument = searcher.doc(hit).map_err(|e| self.fail(e))?;
            let strings = |field| {
                doc.get_all(field)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect::<Vec<_>>()
            };
            let head = strings(self.fields.head);
            let headers = head
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            let body = strings(self.fields.body).concat();
            found.push(IndexedText { uid, headers, body });
        }
        found.sort_by_key(|t| t.uid);
        Ok(Some(found))
    }
}

/// Every character trigram of `text`, in order, as the index's tokenizer makes them.
fn all_trigrams(text: &str) -> Vec<String> {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    if starts.len() < MIN_CHARS {
        return Vec::new();
    }
    (0..=starts.len() - MIN_CHARS)
        .map(|i| {
            let end = starts.get(i + MIN_CHARS).copied().unwrap_or(text.len());
            text[starts[i]..end].to_string()
        })
        .collect()
}

/// The distinct character trigrams of `text`, as the index's tokenizer makes them; at
/// most [`MAX_QUERY_TRIGRAMS`], spread over the string.
fn trigrams(text: &str) -> Vec<String> {
    let mut all = all_trigrams(text);
    if all.len() > MAX_QUERY_TRIGRAMS {
        let step = all.len() as f64 / MAX_QUERY_TRIGRAMS as f64;
        all = (0..MAX_QUERY_TRIGRAMS)
            .map(|i| all[(i as f64 * step) as usize].clone())
            .collect();
    }
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::tokenizer::{TokenStream, Tokenizer};

    fn text(uid: u32, subject: &str, body: &str) -> IndexedText {
        IndexedText {
            uid,
            headers: vec![
                ("subject".into(), subject.into()),
                ("x-tag".into(), "blue\nblue".into()),
            ],
            body: body.into(),
        }
    }

    fn uids(found: Option<Vec<IndexedText>>) -> Vec<u32> {
        found.unwrap().into_iter().map(|t| t.uid).collect()
    }

    #[test]
    fn query_trigrams_are_the_tokenizers() {
        for sample in ["abc", "grüße aus köln", "a b", "日本語のテキスト", "ab", ""] {
            let mut tokenizer = NgramTokenizer::new(3, 3, false).unwrap();
            let mut stream = tokenizer.token_stream(sample);
            let mut tokens = Vec::new();
            while stream.advance() {
                tokens.push(stream.token().text.clone());
            }
            tokens.sort();
            tokens.dedup();
            assert_eq!(trigrams(sample), tokens, "{sample:?}");
        }
        let long = "x".repeat(10) + &"abcdefghijklmnopqrstuvwxyz".repeat(3);
        assert!(trigrams(&long).len() <= MAX_QUERY_TRIGRAMS);
    }

    #[test]
    fn finds_candidates_and_keeps_stored_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TextIndex::open(dir.path()).unwrap();
        index.add(text(1, "hello", "the report is late")).unwrap();
        index.add(text(2, "report", "nothing here")).unwrap();
        index.add(text(3, "grüße", "schöne grüße")).unwrap();
        // Nothing is searchable before the commit.
        assert_eq!(index.uids().len(), 3);
        assert!(index.committed().is_empty());
        assert_eq!(
            uids(index.candidates(&Scope::Body, "report", |_| true).unwrap()),
            [0u32; 0]
        );
        index.commit().unwrap();
        assert_eq!(index.committed(), index.uids());
        let body =
            |index: &TextIndex, n: &str| uids(index.candidates(&Scope::Body, n, |_| true).unwrap());
        let all =
            |index: &TextIndex, n: &str| uids(index.candidates(&Scope::Text, n, |_| true).unwrap());
        assert_eq!(body(&index, "report"), [1]);
        assert_eq!(body(&index, "REPORT"), [1]);
        assert_eq!(all(&index, "report"), [1, 2]);
        assert_eq!(body(&index, "grüße"), [3]);
        assert_eq!(all(&index, "x-tag"), [1, 2, 3]);
        assert_eq!(body(&index, "absent"), [0u32; 0]);
        assert!(
            index
                .candidates(&Scope::Body, "re", |_| true)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            uids(
                index
                    .candidates(&Scope::Text, "report", |uid| uid != 2)
                    .unwrap()
            ),
            [1]
        );
        let stored = index
            .candidates(&Scope::Body, "late", |_| true)
            .unwrap()
            .unwrap();
        assert_eq!(stored, [text(1, "hello", "the report is late")]);

        index.remove(1).unwrap();
        assert!(index.committed().contains(&1), "until the commit");
        index.commit().unwrap();
        assert!(!index.committed().contains(&1));
        assert_eq!(body(&index, "report"), [0u32; 0]);
        assert_eq!(index.uids().iter().copied().collect::<Vec<_>>(), [2, 3]);
        drop(index);

        // Reopened, the index knows what it holds.
        let index = TextIndex::open(dir.path()).unwrap();
        assert_eq!(index.uids().iter().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(
            uids(index.candidates(&Scope::Text, "report", |_| true).unwrap()),
            [2]
        );
    }

    #[test]
    fn header_candidates_are_per_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TextIndex::open(dir.path()).unwrap();
        let message = |uid, subject: &str, from: &str| IndexedText {
            uid,
            headers: vec![
                ("from".into(), from.into()),
                ("subject".into(), subject.into()),
            ],
            body: "report".into(),
        };
        index.add(message(1, "quarterly report", "bob")).unwrap();
        index
            .add(message(2, "lunch", "reporter@example.org"))
            .unwrap();
        index
            .add(message(3, "re: lunch\nre: lunch", "ann"))
            .unwrap();
        index.commit().unwrap();
        let header = |name: &str, needle: &str| {
            let scope = Scope::Header(name.into());
            uids(index.candidates(&scope, needle, |_| true).unwrap())
        };
        assert_eq!(header("subject", "report"), [1]);
        assert_eq!(header("from", "report"), [2]);
        assert_eq!(header("FROM", "REPORT"), [2]);
        assert_eq!(header("subject", "lunch"), [2, 3]);
        // Trigrams across the newline between a value's two forms are there too.
        assert_eq!(header("subject", "h\nre"), [3]);
        assert_eq!(header("cc", "report"), [0u32; 0]);
        assert_eq!(header("x-other", "lunch"), [0u32; 0]);
        let short = Scope::Header("subject".into());
        assert!(index.candidates(&short, "re", |_| true).unwrap().is_none());
    }

    #[test]
    fn an_index_of_another_schema_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // What an older build wrote: another set of fields, one document.
        {
            let mut builder = Schema::builder();
            let uid = builder.add_u64_field("uid", INDEXED | FAST);
            let body = builder.add_text_field("body", tantivy::schema::TEXT);
            let old = Index::create_in_dir(dir.path(), builder.build()).unwrap();
            let mut writer: IndexWriter<TantivyDocument> =
                old.writer_with_num_threads(1, WRITER_HEAP_BYTES).unwrap();
            let mut doc = TantivyDocument::new();
            doc.add_u64(uid, 9);
            doc.add_text(body, "report");
            writer.add_document(doc).unwrap();
            writer.commit().unwrap();
            writer.wait_merging_threads().unwrap();
        }
        let mut index = TextIndex::open(dir.path()).unwrap();
        assert!(index.uids().is_empty(), "the old documents are gone");
        index.add(text(1, "report", "report")).unwrap();
        index.commit().unwrap();
        let scope = Scope::Header("subject".into());
        assert_eq!(
            uids(index.candidates(&scope, "report", |_| true).unwrap()),
            [1]
        );
        drop(index);
        // This build's own index is kept as it is.
        let index = TextIndex::open(dir.path()).unwrap();
        assert_eq!(index.uids().iter().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_deleted_directory_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let index = TextIndex::open(&path).unwrap();
        assert!(index.exists());
        std::fs::remove_dir_all(&path).unwrap();
        assert!(!index.exists());
    }
}
