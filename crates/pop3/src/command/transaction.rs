//! The TRANSACTION state's commands (RFC 1939 section 5, with TOP and UIDL from
//! section 7): STAT, LIST, UIDL, RETR, TOP, DELE, RSET and NOOP.
//!
//! They read only the session's snapshot of the maildrop, except RETR and TOP, which
//! read the body through the mail model (verified against its hash there). A body of
//! 1 MiB or more is a verified spool file read through its map, and the response is
//! byte-stuffed and written in pieces of [`RESPONSE_PIECE`], so neither the body nor
//! its stuffed copy is ever held in the heap whole.

use std::num::NonZeroU32;

use evermail_mailbox::FlagChange;
use evermail_pop3_proto::{Command, MultilineEncoder, Response, encode_multiline, top_of};
use evermail_types::{Flag, Flags};

use crate::session::{CmdResult, Flow, Session, State};

/// How much of a body is stuffed into the output before it is flushed.
const RESPONSE_PIECE: usize = 256 * 1024;

impl Session {
    pub(crate) async fn transaction(&mut self, command: Command) -> CmdResult {
        let State::Transaction(maildrop) = &mut self.state else {
            self.reply(Response::err(format!(
                "{} is not allowed before login",
                command.name()
            )));
            return Ok(Flow::Continue);
        };
        let out = &mut self.output;
        match command {
            Command::Stat => {
                let (count, size) = maildrop.stat();
                Response::ok(format!("{count} {size}")).encode(out);
            }
            Command::List(None) => {
                let (count, size) = maildrop.stat();
                Response::ok(format!("{count} messages ({size} octets)")).encode(out);
                let listing: String = maildrop
                    .live()
                    .map(|(n, e)| format!("{n} {}\r\n", e.size))
                    .collect();
                encode_multiline(listing.as_bytes(), out);
            }
            Command::List(Some(n)) => match maildrop.get(n) {
                Ok(entry) => Response::ok(format!("{n} {}", entry.size)).encode(out),
                Err(missing) => Response::err(missing.text()).encode(out),
            },
            Command::Uidl(None) => {
                Response::ok("unique-id listing follows").encode(out);
                let listing: String = maildrop
                    .live()
                    .map(|(n, e)| format!("{n} {}\r\n", maildrop.unique_id(e)))
                    .collect();
                encode_multiline(listing.as_bytes(), out);
            }
            Command::Uidl(Some(n)) => match maildrop.get(n) {
                Ok(entry) => Response::ok(format!("{n} {}", maildrop.unique_id(entry))).encode(out),
                Err(missing) => Response::err(missing.text()).encode(out),
            },
            Command::Dele(n) => match maildrop.mark_deleted(n) {
                Ok(()) => Response::ok(format!("message {n} deleted")).encode(out),
                Err(missing) => Response::err(missing.text()).encode(out),
            },
            Command::Rset => {
                maildrop.unmark_all();
                let (count, size) = maildrop.stat();
                Response::ok(format!("maildrop has {count} messages ({size} octets)")).encode(out);
            }
            Command::Noop => Response::ok("").encode(out),
            Command::Retr(n) => return self.retrieve(n, None).await,
            Command::Top { message, lines } => return self.retrieve(message, Some(lines)).await,
            other => Response::err(format!("{} is not allowed now", other.name())).encode(out),
        }
        Ok(Flow::Continue)
    }

    /// RETR (`lines` is `None`) and TOP. RETR marks the message `\Seen`, as an IMAP
    /// client would see after reading it; TOP only peeks.
    async fn retrieve(&mut self, number: NonZeroU32, lines: Option<u32>) -> CmdResult {
        let State::Transaction(maildrop) = &self.state else {
            return Ok(Flow::Continue);
        };
        let entry = match maildrop.get(number) {
            Ok(entry) => entry.clone(),
            Err(missing) => {
                self.reply(Response::err(missing.text()));
                return Ok(Flow::Continue);
            }
        };
        let (account, inbox) = (maildrop.account.id, maildrop.inbox);
        let body = match self.mailstore.read_body(entry.blob, entry.size).await {
            Ok(body) => body,
            Err(error) => {
                self.reply_mail_error(&error);
                return Ok(Flow::Continue);
            }
        };
        match lines {
            Some(lines) => {
                self.reply(Response::ok("top of message follows"));
                self.write_multiline(top_of(&body, lines)).await?;
            }
            None => {
                self.reply(Response::ok(format!("{} octets", entry.size)));
                self.write_multiline(&body).await?;
                drop(body);
                let mut seen = Flags::new();
                seen.insert(&Flag::Seen);
                // The message has been sent either way; a flag that could not be set
                // is not worth failing RETR for.
                if let Err(error) = self
                    .mailstore
                    .store_flags(account, inbox, &[entry.uid], FlagChange::Add, &seen)
                    .await
                {
                    tracing::warn!(%error, uid = %entry.uid, "could not set \\Seen after RETR");
                }
            }
        }
        Ok(Flow::Continue)
    }
}

impl Session {
    /// Writes `data` as a multi-line response, stuffed and flushed in pieces.
    async fn write_multiline(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut encoder = MultilineEncoder::new();
        for piece in data.chunks(RESPONSE_PIECE) {
            encoder.encode(piece, &mut self.output);
            if self.output.len() >= RESPONSE_PIECE {
                self.flush().await?;
            }
        }
        encoder.finish(&mut self.output);
        Ok(())
    }
}
