//! USER and PASS (RFC 1939 section 7), AUTH PLAIN (RFC 5034, with or without an
//! initial response) and APOP (refused).
//!
//! Both ways in end in [`Session::finish_login`], so the failure delay, the failure
//! count, the maildrop lock and the snapshot are the same whichever the client used.

use evermail_pop3_proto::{Code, Response, SaslResponse, encode_multiline, parse_sasl_response};

use evermail_mailbox::LoginOutcome;

use crate::maildrop::Maildrop;
use crate::session::{CmdResult, Flow, Input, Session, State};

/// Failed logins after which the session is closed; the client must reconnect (and
/// wait out the delay again) to keep guessing.
const MAX_AUTH_FAILURES: u32 = 3;
/// The longest SASL response line we read.
const MAX_SASL_LINE: usize = 8 * 1024;

impl Session {
    pub(crate) fn user(&mut self, name: String) -> CmdResult {
        if !self.password_allowed() {
            self.refuse_plaintext();
            return Ok(Flow::Continue);
        }
        self.state = State::Authorization { user: Some(name) };
        self.reply(Response::ok("send PASS"));
        Ok(Flow::Continue)
    }

    pub(crate) async fn pass(&mut self, password: String) -> CmdResult {
        if !self.password_allowed() {
            self.refuse_plaintext();
            return Ok(Flow::Continue);
        }
        let State::Authorization { user } = &mut self.state else {
            return Ok(Flow::Continue);
        };
        // RFC 1939: PASS follows a successful USER; either way USER must be given
        // again after a failed PASS.
        let Some(user) = user.take() else {
            self.reply(Response::err("send USER first"));
            return Ok(Flow::Continue);
        };
        self.finish_login(&user, &password).await
    }

    pub(crate) fn apop(&mut self) -> CmdResult {
        // APOP needs the plaintext password on the server; we only keep Argon2 hashes.
        self.reply(Response::err(
            "APOP is not supported; use USER/PASS or AUTH PLAIN",
        ));
        Ok(Flow::Continue)
    }

    pub(crate) async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial_response: Option<Vec<u8>>,
    ) -> CmdResult {
        let Some(mechanism) = mechanism else {
            // RFC 1734's form: AUTH alone lists the mechanisms.
            self.reply(Response::ok("SASL mechanisms follow"));
            let list: &[u8] = if self.password_allowed() {
                b"PLAIN\r\n"
            } else {
                b""
            };
            encode_multiline(list, &mut self.output);
            return Ok(Flow::Continue);
        };
        if mechanism != "PLAIN" {
            self.reply(Response::err(format!(
                "mechanism {mechanism} is not supported"
            )));
            return Ok(Flow::Continue);
        }
        // Refuse before asking for (or looking at) the response, which holds the
        // password.
        if !self.password_allowed() {
            self.refuse_plaintext();
            return Ok(Flow::Continue);
        }
        let response = match initial_response {
            Some(response) => response,
            None => {
                // PLAIN has no server challenge: an empty one asks for the response.
                self.output.extend_from_slice(b"+ \r\n");
                self.flush().await?;
                match self.read_sasl_response().await? {
                    Ok(response) => response,
                    Err(flow) => return Ok(flow),
                }
            }
        };
        // RFC 4616: [authzid] NUL authcid NUL passwd.
        let mut fields = response.split(|&b| b == 0);
        let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(authzid), Some(authcid), Some(password), None) => (
                std::str::from_utf8(authzid),
                std::str::from_utf8(authcid),
                std::str::from_utf8(password),
            ),
            _ => {
                self.reply(Response::err("malformed PLAIN response"));
                return Ok(Flow::Continue);
            }
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = parsed else {
            self.reply(Response::err("PLAIN response is not UTF-8"));
            return Ok(Flow::Continue);
        };
        // Acting as another user is not something we offer.
        if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
            self.reply(Response::err("cannot act as another user").with_code(Code::Auth));
            return Ok(Flow::Continue);
        }
        let (authcid, password) = (authcid.to_string(), password.to_string());
        self.finish_login(&authcid, &password).await
    }

    /// Reads the client's line after a SASL challenge. `Err(flow)` means the exchange
    /// ended without a response, its reply written (cancelled, malformed, shutdown or
    /// autologout).
    async fn read_sasl_response(&mut self) -> std::io::Result<Result<Vec<u8>, Flow>> {
        loop {
            match parse_sasl_response(&self.input, MAX_SASL_LINE) {
                SaslResponse::Data { consumed, data } => {
                    self.consume(consumed);
                    return Ok(Ok(data));
                }
                SaslResponse::Cancel { consumed } => {
                    self.consume(consumed);
                    self.reply(Response::err("authentication cancelled"));
                    return Ok(Err(Flow::Continue));
                }
                SaslResponse::Error { consumed } => {
                    self.consume(consumed);
                    self.reply(Response::err("SASL response is not valid base64"));
                    return Ok(Err(Flow::Continue));
                }
                SaslResponse::Incomplete => {}
            }
            match self.read_input().await? {
                Input::Data => {}
                Input::Closed => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Input::Shutdown => {
                    self.reply_shutdown();
                    return Ok(Err(Flow::Close));
                }
                Input::Timeout => {
                    self.reply(Response::err("autologout; no SASL response"));
                    return Ok(Err(Flow::Close));
                }
            }
        }
    }

    fn refuse_plaintext(&mut self) {
        self.reply(
            Response::err("passwords are not accepted on an unencrypted connection here; use STLS")
                .with_code(Code::Auth),
        );
    }

    /// Answers a failed or refused login after the failure delay, closing the session
    /// after [`MAX_AUTH_FAILURES`].
    async fn refuse_login(&mut self, refusal: Response) -> CmdResult {
        // Only this session waits; the delay makes guessing slow without making the
        // server slow for anyone else.
        tokio::time::sleep(self.options.auth_failure_delay()).await;
        self.reply(refusal);
        if self.auth_failures >= MAX_AUTH_FAILURES {
            return Ok(Flow::Close);
        }
        Ok(Flow::Continue)
    }

    /// Checks the password, takes the maildrop lock and the snapshot of the INBOX, and
    /// enters the TRANSACTION state.
    async fn finish_login(&mut self, user: &str, password: &str) -> CmdResult {
        let client = self.forwarded_peer.unwrap_or(self.peer);
        let outcome = self.mailstore.log_in(client.ip(), user, password).await;
        let account = match outcome {
            Ok(LoginOutcome::LoggedIn(account)) => account,
            Ok(LoginOutcome::Failed) => {
                self.auth_failures += 1;
                tracing::info!(attempt = self.auth_failures, "login failed");
                metrics::counter!("evermail_pop3_auth_failures_total").increment(1);
                let refusal = Response::err("invalid user name or password").with_code(Code::Auth);
                return self.refuse_login(refusal).await;
            }
            Ok(LoginOutcome::LockedOut(scope)) => {
                self.auth_failures += 1;
                tracing::info!(scope = scope.as_str(), "login refused: locked out");
                // RFC 3206: SYS/TEMP says "try later", which is what a lockout means
                // (the right password is refused too); AUTH would make a client ask
                // its user for a new password.
                let refusal = Response::err("too many failed logins; try again later")
                    .with_code(Code::SysTemp);
                return self.refuse_login(refusal).await;
            }
            Err(error) => {
                self.reply(
                    Response::err(format!("cannot check the password now: {error}"))
                        .with_code(Code::SysTemp),
                );
                return Ok(Flow::Continue);
            }
        };
        let Some(lock) = self.mailstore.lock_maildrop(account.id) else {
            tracing::info!(user = %account.address, "maildrop in use");
            self.reply(
                Response::err("maildrop is locked by another POP3 session").with_code(Code::InUse),
            );
            return Ok(Flow::Continue);
        };
        let snapshot = async {
            let inbox = self
                .mailstore
                .find_mailbox(account.id, "INBOX")
                .await?
                .ok_or_else(|| {
                    evermail_mailbox::MailError::new(
                        evermail_mailbox::ErrorKind::Corrupt,
                        "the account has no INBOX",
                    )
                })?;
            // The node's shared view of the mailbox: a large maildrop is not read
            // row by row at every login.
            let view = self.mailstore.view(account.id, inbox.id).await?;
            Ok::<_, evermail_mailbox::MailError>((view.record, view.messages))
        };
        let (inbox, messages) = match snapshot.await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                self.reply_mail_error(&error);
                return Ok(Flow::Continue);
            }
        };
        tracing::Span::current().record("user", account.address.as_str());
        let maildrop = Maildrop::new(account, inbox.id, inbox.uidvalidity, messages, lock);
        let (count, size) = maildrop.stat();
        tracing::info!(messages = count, "logged in");
        self.auth_failures = 0;
        self.state = State::Transaction(maildrop);
        self.reply(Response::ok(format!(
            "maildrop has {count} messages ({size} octets)"
        )));
        Ok(Flow::Continue)
    }
}
