//! Server responses and their wire encoding.
//!
//! The session builds values and calls `encode(&self, out)` to append the bytes,
//! CRLF included. Status responses ([`StatusResponse`]) carry an optional
//! [`Code`]; untagged data other than FETCH is a [`Data`]; FETCH is a
//! [`FetchResponse`] that borrows message data so that `BODY[]` is not copied.
//!
//! The encoder writes names it is given as they are: converting a mailbox name to
//! modified UTF-7 for a rev1 client is the session's choice (see [`crate::mutf7`]).

pub mod body;
pub mod encode;
pub mod fetch;

pub use fetch::{FetchItem, FetchResponse};

use evermail_types::Flag;

use crate::command::StatusItem;
use crate::sequence::SequenceSet;
use encode::{astring, nstring, string, text};

/// Anything the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status(StatusResponse),
    Data(Data),
    Continue(Continue),
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Status(s) => s.encode(out),
            Response::Data(d) => d.encode(out),
            Response::Continue(c) => c.encode(out),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// `tag OK [CODE] text`, or untagged `* OK ...`, `* BYE ...`, `* PREAUTH ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// `None` for an untagged response (always so for PREAUTH and BYE).
    pub tag: Option<String>,
    pub kind: StatusKind,
    pub code: Option<Code>,
    pub text: String,
}

impl StatusResponse {
    pub fn new(tag: Option<&str>, kind: StatusKind, text: impl Into<String>) -> StatusResponse {
        StatusResponse {
            tag: tag.map(String::from),
            kind,
            code: None,
            text: text.into(),
        }
    }

    pub fn ok(tag: &str, text: impl Into<String>) -> StatusResponse {
        StatusResponse::new(Some(tag), StatusKind::Ok, text)
    }

    pub fn no(tag: &str, text: impl Into<String>) -> StatusResponse {
        StatusResponse::new(Some(tag), StatusKind::No, text)
    }

    pub fn bad(tag: Option<&str>, text: impl Into<String>) -> StatusResponse {
        StatusResponse::new(tag, StatusKind::Bad, text)
    }

    pub fn bye(text: impl Into<String>) -> StatusResponse {
        StatusResponse::new(None, StatusKind::Bye, text)
    }

    pub fn with_code(self, code: Code) -> StatusResponse {
        StatusResponse {
            code: Some(code),
            ..self
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.tag {
            Some(tag) => out.extend_from_slice(tag.as_bytes()),
            None => out.push(b'*'),
        }
        out.extend_from_slice(match self.kind {
            StatusKind::Ok => b" OK ",
            StatusKind::No => b" NO ",
            StatusKind::Bad => b" BAD ",
            StatusKind::PreAuth => b" PREAUTH ",
            StatusKind::Bye => b" BYE ",
        });
        if let Some(code) = &self.code {
            out.push(b'[');
            code.encode(out);
            out.extend_from_slice(b"] ");
        }
        // `text` must have at least one character.
        if self.text.is_empty() {
            out.extend_from_slice(b"done");
        } else {
            text(out, &self.text);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A response code (`resp-text-code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    AlreadyExists,
    /// APPENDUID: the mailbox's UIDVALIDITY and the new UIDs.
    AppendUid {
        uid_validity: u32,
        uids: SequenceSet,
    },
    AuthenticationFailed,
    AuthorizationFailed,
    BadCharset(Vec<String>),
    Cannot,
    Capability(Vec<String>),
    ClientBug,
    Closed,
    ContactAdmin,
    /// COPYUID: source and destination UIDs, member by member in the same order.
    CopyUid {
        uid_validity: u32,
        from: SequenceSet,
        to: SequenceSet,
    },
    Corruption,
    Expired,
    ExpungeIssued,
    HasChildren,
    HighestModSeq(u64),
    InUse,
    Limit,
    Modified(SequenceSet),
    NoModSeq,
    NonExistent,
    NoPerm,
    OverQuota,
    Parse,
    /// The flags a client may store; `\*` is added when `keywords` is set.
    PermanentFlags {
        flags: Vec<Flag>,
        keywords: bool,
    },
    PrivacyRequired,
    ReadOnly,
    ReadWrite,
    ServerBug,
    TooBig,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unavailable,
    UnknownCte,
    Unseen(u32),
    UseAttr,
    /// A code this crate has no variant for yet: `[NAME]` or `[NAME value]`. The value
    /// is written as is and must not contain `]`, CR or LF.
    Other {
        name: String,
        value: Option<String>,
    },
}

impl Code {
    fn encode(&self, out: &mut Vec<u8>) {
        let simple: &str = match self {
            Code::Alert => "ALERT",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
            Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
            Code::Cannot => "CANNOT",
            Code::ClientBug => "CLIENTBUG",
            Code::Closed => "CLOSED",
            Code::ContactAdmin => "CONTACTADMIN",
            Code::Corruption => "CORRUPTION",
            Code::Expired => "EXPIRED",
            Code::ExpungeIssued => "EXPUNGEISSUED",
            Code::HasChildren => "HASCHILDREN",
            Code::InUse => "INUSE",
            Code::Limit => "LIMIT",
            Code::NoModSeq => "NOMODSEQ",
            Code::NonExistent => "NONEXISTENT",
            Code::NoPerm => "NOPERM",
            Code::OverQuota => "OVERQUOTA",
            Code::Parse => "PARSE",
            Code::PrivacyRequired => "PRIVACYREQUIRED",
            Code::ReadOnly => "READ-ONLY",
            Code::ReadWrite => "READ-WRITE",
            Code::ServerBug => "SERVERBUG",
            Code::TooBig => "TOOBIG",
            Code::TryCreate => "TRYCREATE",
            Code::Unavailable => "UNAVAILABLE",
            Code::UnknownCte => "UNKNOWN-CTE",
            Code::UseAttr => "USEATTR",
            Code::AppendUid { uid_validity, uids } => {
                out.extend_from_slice(format!("APPENDUID {uid_validity} {uids}").as_bytes());
                return;
            }
            Code::CopyUid {
                uid_validity,
                from,
                to,
            } => {
                out.extend_from_slice(format!("COPYUID {uid_validity} {from} {to}").as_bytes());
                return;
            }
            Code::BadCharset(names) => {
                out.extend_from_slice(b"BADCHARSET");
                if !names.is_empty() {
                    out.extend_from_slice(b" (");
                    join(out, names, |out, n| astring(out, n.as_bytes()));
                    out.push(b')');
                }
                return;
            }
            Code::Capability(caps) => {
                out.extend_from_slice(b"CAPABILITY ");
                join(out, caps, |out, c| text(out, c));
                return;
            }
            Code::HighestModSeq(n) => return number(out, "HIGHESTMODSEQ", *n),
            Code::UidNext(n) => return number(out, "UIDNEXT", u64::from(*n)),
            Code::UidValidity(n) => return number(out, "UIDVALIDITY", u64::from(*n)),
            Code::Unseen(n) => return number(out, "UNSEEN", u64::from(*n)),
            Code::Modified(set) => {
                out.extend_from_slice(format!("MODIFIED {set}").as_bytes());
                return;
            }
            Code::PermanentFlags { flags, keywords } => {
                out.extend_from_slice(b"PERMANENTFLAGS (");
                let mut items: Vec<String> = flags.iter().map(Flag::to_string).collect();
                if *keywords {
                    items.push("\\*".into());
                }
                join(out, &items, |out, f| out.extend_from_slice(f.as_bytes()));
                out.push(b')');
                return;
            }
            Code::Other { name, value } => {
                text(out, name);
                if let Some(value) = value {
                    out.push(b' ');
                    text(out, &value.replace(']', " "));
                }
                return;
            }
        };
        out.extend_from_slice(simple.as_bytes());
    }
}

fn number(out: &mut Vec<u8>, name: &str, n: u64) {
    out.extend_from_slice(format!("{name} {n}").as_bytes());
}

/// Writes items separated by single spaces.
fn join<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        each(out, item);
    }
}

/// A command continuation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continue {
    /// `+ text`, e.g. for a literal or IDLE.
    Text(String),
    /// `+ base64`, a SASL challenge (`+ ` alone when empty).
    Base64(Vec<u8>),
}

impl Continue {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"+ ");
        match self {
            Continue::Text(t) => text(out, t),
            Continue::Base64(data) => {
                out.extend_from_slice(crate::command::auth::encode_base64(data).as_bytes())
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// One mailbox of a LIST or LSUB reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// Attributes with their backslash, e.g. `\HasNoChildren`, `\Sent`.
    pub attributes: Vec<String>,
    /// The hierarchy delimiter, `None` for a flat namespace (NIL).
    pub delimiter: Option<char>,
    pub name: String,
    /// LIST-EXTENDED `CHILDINFO ("SUBSCRIBED")`.
    pub child_info_subscribed: bool,
    /// RFC 9051 `OLDNAME` after a rename.
    pub old_name: Option<String>,
}

/// `* ESEARCH` (RFC 4731).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ESearch {
    /// The tag of the SEARCH command this answers.
    pub tag: Option<String>,
    pub uid: bool,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub count: Option<u32>,
    pub all: Option<SequenceSet>,
    pub mod_seq: Option<u64>,
}

/// The value of a STATUS item: a number, or for MAILBOXID an object id (sent in
/// parentheses, RFC 8474).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusValue {
    Number(u64),
    ObjectId(String),
}

impl From<u64> for StatusValue {
    fn from(n: u64) -> StatusValue {
        StatusValue::Number(n)
    }
}

/// One thread of a THREAD reply: a message (or, only at the top, a missing parent
/// whose children are siblings) and its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadTree {
    /// A sequence number or UID; `None` for a parent that is not in the result.
    pub message: Option<u32>,
    pub children: Vec<ThreadTree>,
}

impl ThreadTree {
    /// `thread-members` / `thread-nested` of RFC 5256: a chain of single replies is
    /// written flat (`1 2 3`), a fork as one parenthesised list per branch.
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(n) = self.message {
            out.extend_from_slice(n.to_string().as_bytes());
        }
        match self.children.as_slice() {
            [] => {}
            [only] if self.message.is_some() => {
                out.push(b' ');
                only.encode(out);
            }
            children => {
                if self.message.is_some() {
                    out.push(b' ');
                }
                for child in children {
                    out.push(b'(');
                    child.encode(out);
                    out.push(b')');
                }
            }
        }
    }
}

/// One namespace of a NAMESPACE reply: prefix and delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// Untagged data other than FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Capability(Vec<String>),
    Enabled(Vec<String>),
    List(ListItem),
    Lsub(ListItem),
    Status {
        mailbox: String,
        items: Vec<(StatusItem, StatusValue)>,
    },
    /// `* FLAGS (...)`; `recent` adds `\Recent` for rev1 sessions.
    Flags {
        flags: Vec<Flag>,
        recent: bool,
    },
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162).
    Vanished {
        earlier: bool,
        uids: SequenceSet,
    },
    /// `* SEARCH n...` with CONDSTORE's `(MODSEQ n)` when set.
    Search {
        numbers: Vec<u32>,
        mod_seq: Option<u64>,
    },
    ESearch(ESearch),
    /// `* SORT n...` (RFC 5256).
    Sort(Vec<u32>),
    /// `* THREAD (...)(...)` (RFC 5256): one tree per thread.
    Thread(Vec<ThreadTree>),
    /// `* ID NIL` or `* ID ("name" "value" ...)`.
    Id(Option<Vec<(String, Option<String>)>>),
    Namespace {
        personal: Vec<Namespace>,
        other: Vec<Namespace>,
        shared: Vec<Namespace>,
    },
    /// `* QUOTA root (resource usage limit ...)` (RFC 9208).
    Quota {
        root: String,
        resources: Vec<QuotaResource>,
    },
    /// `* QUOTAROOT mailbox root...` (RFC 9208).
    QuotaRoot {
        mailbox: String,
        roots: Vec<String>,
    },
}

/// One resource of a QUOTA response, in the resource's units (STORAGE: KiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaResource {
    pub name: &'static str,
    pub usage: u64,
    pub limit: u64,
}

impl Data {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"* ");
        match self {
            Data::Capability(caps) => {
                out.extend_from_slice(b"CAPABILITY ");
                join(out, caps, |out, c| text(out, c));
            }
            Data::Enabled(caps) => {
                out.extend_from_slice(b"ENABLED");
                for c in caps {
                    out.push(b' ');
                    text(out, c);
                }
            }
            Data::List(item) => list_item(out, "LIST", item),
            Data::Lsub(item) => list_item(out, "LSUB", item),
            Data::Status { mailbox, items } => {
                out.extend_from_slice(b"STATUS ");
                astring(out, mailbox.as_bytes());
                out.extend_from_slice(b" (");
                join(out, items, |out, (item, value)| {
                    let value = match value {
                        StatusValue::Number(n) => n.to_string(),
                        StatusValue::ObjectId(id) => format!("({id})"),
                    };
                    out.extend_from_slice(format!("{} {value}", item.name()).as_bytes())
                });
                out.push(b')');
            }
            Data::Flags { flags, recent } => {
                out.extend_from_slice(b"FLAGS ");
                flag_list(out, flags.iter().cloned(), *recent);
            }
            Data::Exists(n) => out.extend_from_slice(format!("{n} EXISTS").as_bytes()),
            Data::Recent(n) => out.extend_from_slice(format!("{n} RECENT").as_bytes()),
            Data::Expunge(n) => out.extend_from_slice(format!("{n} EXPUNGE").as_bytes()),
            Data::Vanished { earlier, uids } => {
                out.extend_from_slice(b"VANISHED ");
                if *earlier {
                    out.extend_from_slice(b"(EARLIER) ");
                }
                out.extend_from_slice(uids.to_string().as_bytes());
            }
            Data::Search { numbers, mod_seq } => {
                out.extend_from_slice(b"SEARCH");
                for n in numbers {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
                if let Some(m) = mod_seq {
                    out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
                }
            }
            Data::ESearch(e) => esearch(out, e),
            Data::Sort(numbers) => {
                out.extend_from_slice(b"SORT");
                for n in numbers {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
            }
            Data::Thread(threads) => {
                out.extend_from_slice(b"THREAD");
                if !threads.is_empty() {
                    out.push(b' ');
                }
                for tree in threads {
                    out.push(b'(');
                    tree.encode(out);
                    out.push(b')');
                }
            }
            Data::Id(params) => {
                out.extend_from_slice(b"ID ");
                match params {
                    None => out.extend_from_slice(b"NIL"),
                    Some(params) => {
                        out.push(b'(');
                        join(out, params, |out, (k, v)| {
                            string(out, k.as_bytes());
                            out.push(b' ');
                            nstring(out, v.as_deref().map(str::as_bytes));
                        });
                        out.push(b')');
                    }
                }
            }
            Data::Namespace {
                personal,
                other,
                shared,
            } => {
                out.extend_from_slice(b"NAMESPACE");
                for group in [personal, other, shared] {
                    out.push(b' ');
                    if group.is_empty() {
                        out.extend_from_slice(b"NIL");
                        continue;
                    }
                    out.push(b'(');
                    for ns in group {
                        out.push(b'(');
                        string(out, ns.prefix.as_bytes());
                        out.push(b' ');
                        delimiter(out, ns.delimiter);
                        out.push(b')');
                    }
                    out.push(b')');
                }
            }
            Data::Quota { root, resources } => {
                out.extend_from_slice(b"QUOTA ");
                astring(out, root.as_bytes());
                out.extend_from_slice(b" (");
                join(out, resources, |out, r| {
                    out.extend_from_slice(format!("{} {} {}", r.name, r.usage, r.limit).as_bytes())
                });
                out.push(b')');
            }
            Data::QuotaRoot { mailbox, roots } => {
                out.extend_from_slice(b"QUOTAROOT ");
                astring(out, mailbox.as_bytes());
                for root in roots {
                    out.push(b' ');
                    astring(out, root.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// `(\Seen \Answered ...)`, with `\Recent` first when asked.
pub(crate) fn flag_list(out: &mut Vec<u8>, flags: impl Iterator<Item = Flag>, recent: bool) {
    out.push(b'(');
    let mut first = true;
    if recent {
        out.extend_from_slice(b"\\Recent");
        first = false;
    }
    for f in flags {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(f.to_string().as_bytes());
    }
    out.push(b')');
}

fn delimiter(out: &mut Vec<u8>, d: Option<char>) {
    match d {
        Some(c) => {
            let mut buf = [0u8; 4];
            string(out, c.encode_utf8(&mut buf).as_bytes());
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

fn list_item(out: &mut Vec<u8>, kind: &str, item: &ListItem) {
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b" (");
    join(out, &item.attributes, |out, a| text(out, a));
    out.extend_from_slice(b") ");
    delimiter(out, item.delimiter);
    out.push(b' ');
    astring(out, item.name.as_bytes());
    let mut ext: Vec<Vec<u8>> = Vec::new();
    if item.child_info_subscribed {
        ext.push(b"\"CHILDINFO\" (\"SUBSCRIBED\")".to_vec());
    }
    if let Some(old) = &item.old_name {
        let mut e = b"\"OLDNAME\" (".to_vec();
        astring(&mut e, old.as_bytes());
        e.push(b')');
        ext.push(e);
    }
    if !ext.is_empty() {
        out.extend_from_slice(b" (");
        join(out, &ext, |out, e| out.extend_from_slice(e));
        out.push(b')');
    }
}

fn esearch(out: &mut Vec<u8>, e: &ESearch) {
    out.extend_from_slice(b"ESEARCH");
    if let Some(tag) = &e.tag {
        out.extend_from_slice(b" (TAG ");
        string(out, tag.as_bytes());
        out.push(b')');
    }
    if e.uid {
        out.extend_from_slice(b" UID");
    }
    for (name, value) in [("MIN", e.min), ("MAX", e.max)] {
        if let Some(v) = value {
            out.extend_from_slice(format!(" {name} {v}").as_bytes());
        }
    }
    if let Some(all) = &e.all {
        out.extend_from_slice(format!(" ALL {all}").as_bytes());
    }
    if let Some(count) = e.count {
        out.extend_from_slice(format!(" COUNT {count}").as_bytes());
    }
    if let Some(m) = e.mod_seq {
        out.extend_from_slice(format!(" MODSEQ {m}").as_bytes());
    }
}

#[cfg(test)]
mod tests;
