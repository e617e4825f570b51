//! IDLE (RFC 2177): report changes to the selected mailbox as they happen, until DONE.
//!
//! A change made through this process wakes the session at once through the mail
//! model's notifications; a change made elsewhere is found by re-reading every
//! [`POLL_INTERVAL`]. While idling every kind of update may be sent, EXPUNGE included.

use evermail_imap_proto::response::{Continue, StatusResponse};
use evermail_imap_proto::{IdleDone, parse_idle_done};
use tokio::time::{Instant, MissedTickBehavior};

use crate::session::{CmdError, CmdResult, Done, IdleEvent, Input, Session};
use crate::state::POLL_INTERVAL;

/// DONE is four letters; a longer line without an end is not a client idling.
const MAX_IDLE_LINE: usize = 1024;

impl Session {
    pub(crate) async fn idle(&mut self, _tag: &str) -> CmdResult {
        self.account()?;
        Continue::Text("idling".into()).encode(&mut self.output);
        self.sync_selected(true, true).await;
        self.flush().await?;
        let deadline = Instant::now() + self.options.idle_timeout();
        let mut poll = tokio::time::interval_at(Instant::now() + POLL_INTERVAL, POLL_INTERVAL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            match parse_idle_done(&self.input, MAX_IDLE_LINE) {
                IdleDone::Done { consumed } => {
                    self.consume(consumed);
                    return Done::ok("IDLE terminated");
                }
                IdleDone::Error { consumed } => {
                    self.consume(consumed);
                    return Err(CmdError::bad("expected DONE"));
                }
                IdleDone::Incomplete => {}
            }
            match self.idle_event(deadline, &mut poll).await? {
                IdleEvent::Input(Input::Data) => {}
                IdleEvent::Input(Input::Closed) => {
                    return Err(CmdError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                IdleEvent::Input(Input::Shutdown) => {
                    self.bye_shutdown();
                    return Ok(Done::Close);
                }
                IdleEvent::Input(Input::Timeout) => {
                    self.write_status(StatusResponse::bye("autologout; idle for too long"));
                    return Ok(Done::Close);
                }
                IdleEvent::Changed => {
                    self.sync_selected(true, false).await;
                    self.flush().await?;
                }
                IdleEvent::Poll => {
                    self.sync_selected(true, true).await;
                    self.flush().await?;
                }
            }
        }
    }
}
