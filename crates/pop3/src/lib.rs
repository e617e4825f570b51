//! The POP3 front end of evermail: [`serve`] accepts connections and runs one session
//! per client, speaking POP3 (RFC 1939) with CAPA and response codes (RFC 2449, RFC
//! 3206), SASL PLAIN (RFC 5034) and STLS (RFC 2595), over the sans-I/O codec of
//! `evermail-pop3-proto` and the mail model ([`Mailstore`]).
//!
//! ```no_run
//! # async fn run(mailstore: evermail_mailbox::Mailstore) -> std::io::Result<()> {
//! use evermail_pop3::{ListenerTls, Pop3Options, serve};
//! use std::sync::Arc;
//! use tokio_util::sync::CancellationToken;
//!
//! let options = Arc::new(Pop3Options::default());
//! let listener = tokio::net::TcpListener::bind(options.listen[0]).await?;
//! let shutdown = CancellationToken::new();
//! // Cancelling `shutdown` ends every session at its next command boundary, without
//! // deleting anything (only QUIT does); `serve` returns once all have closed.
//! serve(listener, mailstore, options, ListenerTls::Off, shutdown).await
//! # }
//! ```
//!
//! # Layout
//! - `options`: [`Pop3Options`], the `[pop3]` section of the configuration file.
//! - `server`: [`serve`], the accept loop, the per-connection span. [`ListenerTls`] and
//!   [`PlaintextAuth`] come from `evermail-tls`, shared with IMAP.
//! - `session`: one connection: the input buffer, output, autologout, shutdown, and
//!   the dispatch by state (AUTHORIZATION or TRANSACTION).
//! - `maildrop`: the TRANSACTION state's view of the INBOX: message numbers fixed at
//!   login, deletion marks, unique ids.
//! - `command/`: `auth` (USER, PASS, AUTH, APOP), `stls`, `capa`, `transaction`
//!   (STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP) and `quit` (the UPDATE state).
//!
//! # Invariants
//! - *Only QUIT deletes.* DELE marks a message in the session; the marks are applied
//!   (`Mailstore::expunge`) when QUIT arrives in the TRANSACTION state. A dropped
//!   connection, autologout or shutdown removes nothing (RFC 1939 section 6).
//! - *One POP3 session per maildrop.* Entering TRANSACTION takes the account's
//!   maildrop lock (`Mailstore::lock_maildrop`); a second login gets `-ERR [IN-USE]`.
//!   The lock is released when the session ends however it ends.
//! - *Message numbers and sizes do not move during a session.* They are a snapshot of
//!   the INBOX at login; mail that arrives later shows up in the next session.
//! - *A unique id never changes and is never reused*: `UIDVALIDITY.UID` of the INBOX,
//!   which the mail model keeps across sessions and restarts.
//! - *Nothing sent in plaintext is read as a command of an encrypted session.* After
//!   STLS's `+OK`, whatever the client pipelined behind it is discarded before the
//!   handshake (CVE-2011-0411).
//! - *A password crosses the wire only where `plaintext_auth` allows it or inside
//!   TLS.* Elsewhere CAPA offers neither USER nor SASL PLAIN and both answer
//!   `-ERR [AUTH]` without looking at a password.
//!
//! # What this crate must not do
//! - No SQL, no file paths, no blob keys: storage is the mail model's.
//! - No wire syntax by hand: commands are parsed and responses encoded by
//!   `evermail-pop3-proto`.
//! - Depend on another protocol crate: what it shares with IMAP is in
//!   `evermail-listener` and `evermail-tls`.

mod command;
mod maildrop;
mod options;
mod server;
mod session;

pub use evermail_tls::{ListenerTls, PlaintextAuth};
pub use options::Pop3Options;
pub use server::serve;

#[doc(no_inline)]
pub use evermail_mailbox::Mailstore;
