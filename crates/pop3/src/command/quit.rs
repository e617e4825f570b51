//! QUIT, and with it the UPDATE state (RFC 1939 section 6): the messages marked by
//! DELE are removed now, and only now.

use evermail_pop3_proto::{Code, Response};

use crate::session::{CmdResult, Flow, Session, State};

impl Session {
    pub(crate) async fn quit(&mut self) -> CmdResult {
        let State::Transaction(maildrop) = &self.state else {
            self.reply(Response::ok("evermail POP3 server signing off"));
            return Ok(Flow::Close);
        };
        let marked = maildrop.marked();
        let (account, inbox) = (maildrop.account.id, maildrop.inbox);
        let (left, _) = maildrop.stat();
        if marked.is_empty() {
            self.reply(Response::ok(format!(
                "evermail POP3 server signing off ({left} messages left)"
            )));
            return Ok(Flow::Close);
        }
        match self.mailstore.expunge(account, inbox, &marked).await {
            Ok(gone) => {
                tracing::info!(deleted = gone.len(), "maildrop updated");
                self.reply(Response::ok(format!(
                    "evermail POP3 server signing off ({left} messages left)"
                )));
            }
            Err(error) => {
                tracing::error!(%error, "could not remove the deleted messages");
                self.reply(
                    Response::err("some deleted messages not removed").with_code(Code::SysTemp),
                );
            }
        }
        Ok(Flow::Close)
    }
}
