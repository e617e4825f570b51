//! The LMTP (RFC 2033) and SMTP (RFC 5321) protocol without I/O: command parsing,
//! reply encoding, and decoding of the message that follows `DATA` or `BDAT`.
//!
//! The LMTP session (`evermail-lmtp`) reads bytes from the socket, and this crate tells
//! it what they mean; SMTP submission may reuse it later. Nothing here blocks, reads,
//! allocates without bound or keeps session state, so every function can be tested
//! with byte strings and fuzzed.
//!
//! ```
//! use evermail_smtp_proto::{Command, LineScan, Reply, find_line, parse_command};
//!
//! let buf = b"RSET\r\nNOOP\r\n";
//! let LineScan::Line(len) = find_line(buf, 512) else { unreachable!() };
//! assert_eq!(parse_command(&buf[..len]), Ok(Command::Rset));
//!
//! let mut out = Vec::new();
//! Reply::ok().encode(&mut out);
//! assert_eq!(out, b"250 2.0.0 OK\r\n");
//! ```
//!
//! # Layout
//! - [`line`](mod@line): [`find_line`], which delimits a command line within a length limit.
//! - `command/`: [`parse_command`] and [`Command`], one file per verb with its tests.
//! - [`path`]: mailboxes, domains and the `<...>` paths of MAIL and RCPT.
//! - `params`: the `KEYWORD=value` parameters after a path (crate-private).
//! - [`reply`]: [`Reply`], its encoder, the common replies and [`Capabilities`].
//! - [`data`]: [`DataDecoder`], which unstuffs and ends a DATA body.
//! - [`bdat_body`]: [`BdatBody`], which counts the chunks of a BDAT body.
//! - [`error`]: [`CommandError`] and the [`ErrorKind`] a session maps to a reply.
//!
//! # What this crate must not do
//! - No I/O and no async runtime: the session owns the socket, the buffers and the
//!   timeouts. This crate only ever sees byte slices.
//! - No session state: whether a command is allowed *now* (RCPT before MAIL, HELO in
//!   LMTP, BINARYMIME with DATA) is the session's decision.
//! - No delivery, user lookup or storage: a parsed [`Mailbox`] is only syntax.
//! - No panics on any input, which the property tests in `tests/` check.

pub mod bdat_body;
mod command;
pub mod data;
pub mod error;
pub mod line;
mod params;
pub mod path;
pub mod reply;

pub use bdat_body::{BdatBody, BdatFeed};
pub use command::{BodyType, Command, MailFrom, RcptTo, parse_command};
pub use data::{DataDecoder, Feed};
pub use error::{CommandError, ErrorKind};
pub use line::{LineScan, find_line};
pub use path::{Domain, ForwardPath, Mailbox, PathError, ReversePath};
pub use reply::{Capabilities, EnhancedCode, Reply};
