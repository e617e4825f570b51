//! CAPA (RFC 2449): what this server offers, which depends on the state and on
//! whether a password may be sent on this connection.

use evermail_pop3_proto::{Response, encode_multiline};

use crate::session::{CmdResult, Flow, Session, State};

impl Session {
    pub(crate) fn capa(&mut self) -> CmdResult {
        let mut lines = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if matches!(self.state, State::Authorization { .. }) {
            // RFC 2595 section 4: do not offer plaintext logins where they would be
            // refused; STLS is offered until it has been used.
            if self.password_allowed() {
                lines.extend(["USER", "SASL PLAIN"]);
            }
            if self.starttls.is_some() && !self.stream.is_tls() {
                lines.push("STLS");
            }
        }
        lines.push("IMPLEMENTATION evermail");
        let body: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        self.reply(Response::ok("capability list follows"));
        encode_multiline(body.as_bytes(), &mut self.output);
        Ok(Flow::Continue)
    }
}
