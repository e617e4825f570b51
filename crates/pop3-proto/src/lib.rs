//! A sans-I/O POP3 command parser and response encoder for the evermail POP3 session:
//! RFC 1939 (the base protocol, with TOP, UIDL, USER/PASS and APOP), RFC 2449 (CAPA
//! and extended response codes), RFC 3206 (`[SYS/...]`, `[AUTH]`), RFC 5034 (AUTH with
//! an initial response) and RFC 2595 (STLS).
//!
//! The session owns the socket and a byte buffer. It appends what it reads and calls
//! [`parse_command`], which answers with a [`Parse`]: a whole [`Command`] and how many
//! bytes it used, a request for more bytes, or an error with how many bytes to skip and
//! a reason to send after `-ERR`. Replies are [`Response`] values (`+OK`/`-ERR` with an
//! optional [`Code`]) appended to an output buffer with `encode`; multi-line bodies go
//! through [`encode_multiline`], which byte-stuffs lines that start with `.` and adds the
//! terminating `.` line. Nothing here reads, writes, sleeps, logs or touches storage,
//! and the crate has no dependencies at all.
//!
//! # Example
//! ```
//! use evermail_pop3_proto::{Code, Command, Parse, Response, encode_multiline, parse_command};
//!
//! let mut buf = b"USER alice@example.com\r\nRETR 1\r\n".to_vec();
//! let Parse::Complete { consumed, command } = parse_command(&buf) else { panic!() };
//! assert_eq!(command, Command::User("alice@example.com".into()));
//! buf.drain(..consumed);
//! let Parse::Complete { command, .. } = parse_command(&buf) else { panic!() };
//! assert_eq!(command, Command::Retr(1.try_into().unwrap()));
//!
//! let mut out = Vec::new();
//! Response::err("maildrop already locked").with_code(Code::InUse).encode(&mut out);
//! assert_eq!(out, b"-ERR [IN-USE] maildrop already locked\r\n");
//! out.clear();
//! Response::ok("message follows").encode(&mut out);
//! encode_multiline(b"Subject: x\r\n\r\n.hidden\r\n", &mut out);
//! assert_eq!(out, b"+OK message follows\r\nSubject: x\r\n\r\n..hidden\r\n.\r\n");
//! ```
//!
//! # Layout
//! - [`command`]: [`Command`], [`parse_command`] and the line framing. POP3 commands are
//!   a keyword and at most two short arguments, so their grammar is one table rather
//!   than one file per command; the tests are one table per command.
//! - [`response`]: [`Response`] and the extended response [`Code`]s.
//! - [`multiline`]: byte-stuffing of multi-line responses, and [`top_of`] (the part of a
//!   message `TOP n m` sends).
//! - [`sasl`]: base64 and the client's line after a SASL challenge (RFC 5034).
//! - [`error`]: [`ParseError`] and [`ParseErrorKind`].
//!
//! *Invariant*: no input makes the parser panic, and nothing it allocates is larger than
//! the bytes the client actually sent; `tests/fuzz.rs` checks the first part.

pub mod command;
pub mod error;
pub mod multiline;
pub mod response;
pub mod sasl;

pub use command::{Command, MAX_LINE, Parse, Secret, parse_command};
pub use error::{ParseError, ParseErrorKind};
pub use multiline::{MultilineEncoder, encode_multiline, top_of};
pub use response::{Code, Response, Status};
pub use sasl::{SaslResponse, base64_decode, base64_encode, parse_sasl_response};
