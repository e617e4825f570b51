//! The IMAP front end of evermail: [`serve`] accepts connections and runs one session
//! per client, speaking IMAP4rev1 (RFC 3501) with the extensions listed by
//! CAPABILITY, over the sans-I/O codec of `evermail-imap-proto` and the mail model
//! ([`Mailstore`]).
//!
//! ```no_run
//! # async fn run(mailstore: evermail_mailbox::Mailstore) -> std::io::Result<()> {
//! use evermail_imap::{ImapOptions, ListenerTls, serve};
//! use std::sync::Arc;
//! use tokio_util::sync::CancellationToken;
//!
//! let options = Arc::new(ImapOptions::default());
//! let listener = tokio::net::TcpListener::bind(options.listen[0]).await?;
//! let shutdown = CancellationToken::new();
//! // Cancelling `shutdown` makes every session say `* BYE [UNAVAILABLE]` at its next
//! // safe point; `serve` returns once all of them have closed.
//! // `ListenerTls::StartTls(config)` offers STARTTLS, `Implicit(config)` is port 993's
//! // role; the config comes from `evermail_tls::server_config`.
//! serve(listener, mailstore, options, ListenerTls::Off, shutdown).await
//! # }
//! ```
//!
//! # Layout
//! - `options`: [`ImapOptions`], the `[imap]` section of the configuration file.
//! - `server`: [`serve`], the accept loop, shutdown, per-connection span and metrics;
//!   [`ListenerTls`], whether a listener is plaintext, offers STARTTLS or is implicit
//!   TLS.
//! - `session`: one connection: the input buffer and literal continuations, output
//!   buffering, autologout, the command dispatch, and how a command's result becomes
//!   its tagged reply (`CmdError` maps mail-model errors to response codes).
//! - `literal`: a large APPEND literal taken into a spool file while it arrives.
//! - `state`: the selected mailbox as the session sees it (sequence numbers to UIDs,
//!   flags, HIGHESTMODSEQ) and how other sessions' changes are folded in and reported.
//! - `command/`: one file per command or small group, each an `impl Session` block:
//!   `login` (LOGIN, AUTHENTICATE), `starttls`, `capability` (CAPABILITY, ENABLE, ID, NAMESPACE,
//!   LOGOUT), `select` (SELECT, EXAMINE, CLOSE, UNSELECT), `list` (LIST, LSUB),
//!   `manage` (CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE), `status`, `append`, `idle`,
//!   `fetch/` (with `section.rs` cutting `BODY[section]<partial>`), `store`, `search`,
//!   `expunge`, `copy` (COPY, MOVE); `fetch/large.rs` writes large literals in pieces.
//!
//! # Invariants
//! - *A session reaches mail only through [`Mailstore`] with the account it logged in
//!   as.* The mail model checks ownership on every call; this crate never holds a
//!   mailbox id it did not get from that account's own lookups.
//! - *Message sequence numbers change only when the client is told.* The selected view
//!   adds messages when it sends EXISTS and drops them when it sends EXPUNGE, and it
//!   never sends EXPUNGE while answering FETCH, STORE or SEARCH (RFC 9051 section
//!   7.5.1); removals seen then wait for the next command that allows them.
//! - *Untagged updates come before the tagged reply they precede, never unasked.* They
//!   are written after a command and during IDLE, nowhere else.
//! - *Nothing sent in plaintext is read as a command of an encrypted session.* After
//!   STARTTLS's `OK`, whatever the client pipelined behind it is discarded before the
//!   handshake (CVE-2011-0411); only bytes read through TLS are parsed afterwards.
//! - *A password crosses the wire only where `plaintext_auth` allows it or inside
//!   TLS.* Elsewhere CAPABILITY says `LOGINDISABLED` and LOGIN/AUTHENTICATE answer
//!   `NO [PRIVACYREQUIRED]` without checking (or asking for) a password.
//! - *No input panics the session or grows memory without bound.* The parser's limits
//!   bound lines and literals (smaller before login); output is flushed in chunks.
//!
//! # What this crate must not do
//! - No SQL, no file paths, no blob keys: storage is the mail model's.
//! - No wire syntax by hand: commands are parsed and responses encoded by
//!   `evermail-imap-proto`.
//! - No capability advertised that is not implemented (see `command/capability.rs`).

mod command;
mod compress;
mod literal;
mod options;
mod server;
mod session;
mod state;

pub use evermail_tls::{ListenerTls, PlaintextAuth};
pub use options::ImapOptions;
pub use server::serve;

#[doc(no_inline)]
pub use evermail_mailbox::Mailstore;
