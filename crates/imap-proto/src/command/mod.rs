//! Commands: the tag, the name, and one typed value per command.
//!
//! Each file holds one command or a small group sharing a grammar, with a
//! `parse(c)` that reads the arguments after the command name (starting at the space
//! before the first argument) and its table-driven tests. This file only reads the tag
//! and name and dispatches with a plain `match`.

pub mod append;
pub mod auth;
pub mod copy;
pub mod enable;
pub mod fetch;
pub mod id;
pub mod idle;
pub mod list;
pub mod manage;
pub mod quota;
pub mod search;
pub mod select;
pub mod sort;
pub mod status;
pub mod store;

use crate::cursor::{Cursor, is_tag_char};
use crate::error::{PResult, ParseError, ParseErrorKind};
use crate::sequence::SequenceSet;

pub use append::{Append, AppendMessage};
pub use auth::{Authenticate, Login};
pub use copy::CopyMove;
pub use enable::Enable;
pub use fetch::{Fetch, FetchAttr, Partial, Section, SectionText};
pub use id::Id;
pub use list::{List, ListReturn, ListSelect, Lsub};
pub use manage::{Create, Rename};
pub use quota::SetQuota;
pub use search::{Search, SearchKey, SearchReturn};
pub use select::{Qresync, Select};
pub use sort::{Sort, SortCriterion, SortKey, Thread, ThreadAlgorithm};
pub use status::{Status, StatusItem};
pub use store::{Store, StoreMode};

use crate::mailbox::MailboxName;

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub body: CommandBody,
}

/// What a command asks for. `uid` fields say whether the command came as `UID ...`, in
/// which case its sequence set holds UIDs rather than message sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    Authenticate(Authenticate),
    Login(Login),
    Enable(Enable),
    /// SELECT, or EXAMINE when `read_only`.
    Select(Select),
    Create(Create),
    Delete(MailboxName),
    Rename(Rename),
    Subscribe(MailboxName),
    Unsubscribe(MailboxName),
    List(List),
    Lsub(Lsub),
    Namespace,
    Status(Status),
    Append(Append),
    Idle,
    Check,
    Close,
    Unselect,
    /// EXPUNGE, or UID EXPUNGE with the UIDs it is limited to.
    Expunge {
        uids: Option<SequenceSet>,
    },
    Fetch(Fetch),
    Store(Store),
    Copy(CopyMove),
    Move(CopyMove),
    Search(Search),
    Sort(Sort),
    Thread(Thread),
    Id(Id),
    /// QUOTA (RFC 9208): GETQUOTA of a quota root.
    GetQuota(String),
    GetQuotaRoot(MailboxName),
    SetQuota(SetQuota),
    /// COMPRESS (RFC 4978) with its mechanism, upper-cased.
    Compress(String),
}

impl CommandBody {
    /// The command name as the client would write it (`UID FETCH` for a UID fetch), for
    /// logs and for replies such as `a1 OK FETCH completed`.
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Authenticate(_) => "AUTHENTICATE",
            CommandBody::Login(_) => "LOGIN",
            CommandBody::Enable(_) => "ENABLE",
            CommandBody::Select(s) if s.read_only => "EXAMINE",
            CommandBody::Select(_) => "SELECT",
            CommandBody::Create(_) => "CREATE",
            CommandBody::Delete(_) => "DELETE",
            CommandBody::Rename(_) => "RENAME",
            CommandBody::Subscribe(_) => "SUBSCRIBE",
            CommandBody::Unsubscribe(_) => "UNSUBSCRIBE",
            CommandBody::List(_) => "LIST",
            CommandBody::Lsub(_) => "LSUB",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::Status(_) => "STATUS",
            CommandBody::Append(_) => "APPEND",
            CommandBody::Idle => "IDLE",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Expunge { uids: Some(_) } => "UID EXPUNGE",
            CommandBody::Expunge { uids: None } => "EXPUNGE",
            CommandBody::Fetch(f) if f.uid => "UID FETCH",
            CommandBody::Fetch(_) => "FETCH",
            CommandBody::Store(s) if s.uid => "UID STORE",
            CommandBody::Store(_) => "STORE",
            CommandBody::Copy(c) if c.uid => "UID COPY",
            CommandBody::Copy(_) => "COPY",
            CommandBody::Move(c) if c.uid => "UID MOVE",
            CommandBody::Move(_) => "MOVE",
            CommandBody::Search(s) if s.uid => "UID SEARCH",
            CommandBody::Search(_) => "SEARCH",
            CommandBody::Sort(s) if s.uid => "UID SORT",
            CommandBody::Sort(_) => "SORT",
            CommandBody::Thread(t) if t.uid => "UID THREAD",
            CommandBody::Thread(_) => "THREAD",
            CommandBody::Id(_) => "ID",
            CommandBody::GetQuota(_) => "GETQUOTA",
            CommandBody::GetQuotaRoot(_) => "GETQUOTAROOT",
            CommandBody::SetQuota(_) => "SETQUOTA",
            CommandBody::Compress(_) => "COMPRESS",
        }
    }
}

/// Parses one framed command (through its final line end).
pub(crate) fn parse(input: &[u8]) -> PResult<Command> {
    let mut c = Cursor::new(input);
    let tag = c.take_while(is_tag_char);
    if tag.is_empty() {
        return Err(ParseError::syntax("missing or invalid tag"));
    }
    // Tag characters are ASCII.
    let tag = String::from_utf8_lossy(tag).into_owned();
    c.sp()?;
    let body = parse_body(&mut c)?;
    c.end()?;
    Ok(Command { tag, body })
}

fn parse_body(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let name = c.atom()?.to_ascii_uppercase();
    Ok(match name.as_str() {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "NAMESPACE" => CommandBody::Namespace,
        "IDLE" => CommandBody::Idle,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "COMPRESS" => {
            c.sp()?;
            CommandBody::Compress(c.atom()?.to_ascii_uppercase())
        }
        "EXPUNGE" => CommandBody::Expunge { uids: None },
        "AUTHENTICATE" => CommandBody::Authenticate(auth::parse_authenticate(c)?),
        "LOGIN" => CommandBody::Login(auth::parse_login(c)?),
        "ENABLE" => CommandBody::Enable(enable::parse(c)?),
        "SELECT" => CommandBody::Select(select::parse(c, false)?),
        "EXAMINE" => CommandBody::Select(select::parse(c, true)?),
        "CREATE" => CommandBody::Create(manage::parse_create(c)?),
        "DELETE" => CommandBody::Delete(manage::parse_mailbox(c)?),
        "RENAME" => CommandBody::Rename(manage::parse_rename(c)?),
        "SUBSCRIBE" => CommandBody::Subscribe(manage::parse_mailbox(c)?),
        "UNSUBSCRIBE" => CommandBody::Unsubscribe(manage::parse_mailbox(c)?),
        "LIST" => CommandBody::List(list::parse_list(c)?),
        "LSUB" => CommandBody::Lsub(list::parse_lsub(c)?),
        "STATUS" => CommandBody::Status(status::parse(c)?),
        "APPEND" => CommandBody::Append(append::parse(c)?),
        "FETCH" => CommandBody::Fetch(fetch::parse(c, false)?),
        "STORE" => CommandBody::Store(store::parse(c, false)?),
        "COPY" => CommandBody::Copy(copy::parse(c, false)?),
        "MOVE" => CommandBody::Move(copy::parse(c, false)?),
        "SEARCH" => CommandBody::Search(search::parse(c, false)?),
        "SORT" => CommandBody::Sort(sort::parse_sort(c, false)?),
        "THREAD" => CommandBody::Thread(sort::parse_thread(c, false)?),
        "ID" => CommandBody::Id(id::parse(c)?),
        "GETQUOTA" => CommandBody::GetQuota(quota::parse_getquota(c)?),
        "GETQUOTAROOT" => CommandBody::GetQuotaRoot(quota::parse_getquotaroot(c)?),
        "SETQUOTA" => CommandBody::SetQuota(quota::parse_setquota(c)?),
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" => CommandBody::Fetch(fetch::parse(c, true)?),
                "STORE" => CommandBody::Store(store::parse(c, true)?),
                "COPY" => CommandBody::Copy(copy::parse(c, true)?),
                "MOVE" => CommandBody::Move(copy::parse(c, true)?),
                "SEARCH" => CommandBody::Search(search::parse(c, true)?),
                "SORT" => CommandBody::Sort(sort::parse_sort(c, true)?),
                "THREAD" => CommandBody::Thread(sort::parse_thread(c, true)?),
                "EXPUNGE" => {
                    c.sp()?;
                    CommandBody::Expunge {
                        uids: Some(SequenceSet::parse(c)?),
                    }
                }
                _ => {
                    return Err(ParseError::new(
                        ParseErrorKind::UnknownCommand,
                        format!("unknown command UID {sub}"),
                    ));
                }
            }
        }
        _ => {
            return Err(ParseError::new(
                ParseErrorKind::UnknownCommand,
                format!("unknown command {name}"),
            ));
        }
    })
}

/// A value of an extension parameter we do not interpret (`tagged-ext-val` of
/// RFC 4466), kept so that a session can still act on it or echo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtValue {
    /// An atom, string, number or sequence set, as text.
    Text(String),
    List(Vec<ExtValue>),
}

impl ExtValue {
    pub(crate) fn parse(c: &mut Cursor<'_>) -> PResult<ExtValue> {
        if c.peek() == Some(b'(') {
            return c.list_or_empty(ExtValue::parse).map(ExtValue::List);
        }
        // Sequence sets contain `*` and `:`, which are not atom characters.
        let text = c.take_while(|b| {
            crate::cursor::is_astring_char(b) || matches!(b, b'*' | b':' | b',' | b'$')
        });
        if !text.is_empty() {
            return Ok(ExtValue::Text(String::from_utf8_lossy(text).into_owned()));
        }
        Ok(ExtValue::Text(
            String::from_utf8_lossy(&c.string()?).into_owned(),
        ))
    }
}

/// Parses a parenthesised flag list for APPEND and STORE: system flags and keywords,
/// nothing the client may not set (`\Recent`, `\*`, unknown `\` flags).
pub(crate) fn parse_flag_list(c: &mut Cursor<'_>) -> PResult<Vec<evermail_types::Flag>> {
    c.list_or_empty(parse_flag)
}

pub(crate) fn parse_flag(c: &mut Cursor<'_>) -> PResult<evermail_types::Flag> {
    let backslash = c.eat(b'\\');
    let atom = c.atom()?;
    let text = if backslash {
        format!("\\{atom}")
    } else {
        atom.to_string()
    };
    evermail_types::Flag::parse(&text)
        .ok_or_else(|| ParseError::syntax(format!("flag {text} cannot be set by a client")))
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Parses a whole command line, panicking with the input on failure.
    pub(crate) fn body(input: &str) -> PResult<CommandBody> {
        parse(input.as_bytes()).map(|c| c.body)
    }

    /// Runs a table: each input either parses to the expected body or fails with a
    /// message containing the expected text.
    pub(crate) fn check(cases: &[(&str, Result<CommandBody, &str>)]) {
        for (input, want) in cases {
            let got = body(input);
            match (&got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input:?}"),
                (Err(e), Err(want)) => {
                    assert!(
                        e.message().contains(want),
                        "{input:?}: {:?} !~ {want:?}",
                        e.message()
                    )
                }
                _ => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::check;
    use super::*;

    #[test]
    fn parses_simple_commands() {
        check(&[
            ("a CAPABILITY\r\n", Ok(CommandBody::Capability)),
            ("a noop\r\n", Ok(CommandBody::Noop)),
            ("a LOGOUT\n", Ok(CommandBody::Logout)),
            ("a StartTLS\r\n", Ok(CommandBody::StartTls)),
            ("a NAMESPACE\r\n", Ok(CommandBody::Namespace)),
            ("a IDLE\r\n", Ok(CommandBody::Idle)),
            ("a CHECK\r\n", Ok(CommandBody::Check)),
            ("a CLOSE\r\n", Ok(CommandBody::Close)),
            ("a UNSELECT\r\n", Ok(CommandBody::Unselect)),
            (
                "a compress deflate\r\n",
                Ok(CommandBody::Compress("DEFLATE".into())),
            ),
            ("a EXPUNGE\r\n", Ok(CommandBody::Expunge { uids: None })),
            (
                "a UID EXPUNGE 1:3\r\n",
                Ok(CommandBody::Expunge {
                    uids: Some("1:3".parse().unwrap()),
                }),
            ),
            ("a NOOP extra\r\n", Err("expected the end of the line")),
            ("a NOOP \r\n", Err("expected the end of the line")),
            ("a  NOOP\r\n", Err("expected an atom")),
            ("a FROB\r\n", Err("unknown command FROB")),
            ("a UID FROB 1\r\n", Err("unknown command UID FROB")),
            ("a UID EXPUNGE\r\n", Err("expected a space")),
            ("+ NOOP\r\n", Err("missing or invalid tag")),
            ("\r\n", Err("missing or invalid tag")),
            ("NOOP\r\n", Err("expected a space")),
        ]);
    }

    #[test]
    fn unknown_commands_have_their_own_kind() {
        let e = parse(b"a FROB\r\n").unwrap_err();
        assert_eq!(e.kind(), ParseErrorKind::UnknownCommand);
        let e = parse(b"a NOOP x\r\n").unwrap_err();
        assert_eq!(e.kind(), ParseErrorKind::Syntax);
    }

    #[test]
    fn parses_flags() {
        use evermail_types::Flag;
        let mut c = Cursor::new(b"(\\Seen $Junk \\draft)");
        assert_eq!(
            parse_flag_list(&mut c).unwrap(),
            [Flag::Seen, Flag::Keyword("$Junk".into()), Flag::Draft]
        );
        for bad in ["(\\Recent)", "(\\*)", "(\\Foo)", "(a", "(\"x\")"] {
            assert!(
                parse_flag_list(&mut Cursor::new(bad.as_bytes())).is_err(),
                "{bad}"
            );
        }
    }
}
