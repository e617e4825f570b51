//! LOGIN and AUTHENTICATE PLAIN (with SASL-IR, RFC 4959, and the continuation form).
//!
//! Both end in [`Session::finish_login`], so the failure delay, the failure count and
//! the capability list after login are the same whichever the client used.

use evermail_imap_proto::command::{Authenticate, Login};
use evermail_imap_proto::response::{Code, Continue, StatusResponse};
use evermail_imap_proto::{SaslResponse, parse_sasl_response};
use evermail_mailbox::LoginOutcome;

use crate::session::{CmdError, CmdResult, Done, Input, Session};

/// Failed logins after which the session is closed; the client must reconnect (and
/// wait out the delay again) to keep guessing.
const MAX_AUTH_FAILURES: u32 = 3;
/// The longest SASL response line we read.
const MAX_SASL_LINE: usize = 8 * 1024;

impl Session {
    pub(crate) async fn login(&mut self, tag: &str, login: Login) -> CmdResult {
        self.require_plaintext_auth()?;
        self.finish_login(tag, &login.username, &login.password)
            .await
    }

    pub(crate) async fn authenticate(&mut self, tag: &str, auth: Authenticate) -> CmdResult {
        if auth.mechanism != "PLAIN" {
            return Err(CmdError::no(
                Code::Cannot,
                format!("mechanism {} is not supported", auth.mechanism),
            ));
        }
        self.require_plaintext_auth()?;
        let response = match auth.initial_response {
            Some(response) => response,
            None => {
                // PLAIN has no server challenge: an empty one asks for the response.
                Continue::Base64(Vec::new()).encode(&mut self.output);
                self.flush().await?;
                match self.read_sasl_response().await? {
                    Some(response) => response,
                    None => return Ok(Done::Close),
                }
            }
        };
        // RFC 4616: [authzid] NUL authcid NUL passwd.
        let mut fields = response.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(CmdError::bad("malformed PLAIN response"));
        };
        let (Ok(authzid), Ok(authcid), Ok(password)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(password),
        ) else {
            return Err(CmdError::bad("PLAIN response is not UTF-8"));
        };
        // Acting as another user is not something we offer.
        if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid) {
            return Err(CmdError::no(
                Code::AuthorizationFailed,
                "cannot act as another user",
            ));
        }
        self.finish_login(tag, authcid, password).await
    }

    /// Reads the client's line after a SASL continuation. `Ok(None)` means the session
    /// must close (a BYE was written: shutdown or autologout).
    async fn read_sasl_response(&mut self) -> Result<Option<Vec<u8>>, CmdError> {
        loop {
            match parse_sasl_response(&self.input, MAX_SASL_LINE) {
                SaslResponse::Data { consumed, data } => {
                    self.consume(consumed);
                    return Ok(Some(data));
                }
                SaslResponse::Cancel { consumed } => {
                    self.consume(consumed);
                    return Err(CmdError::bad("authentication cancelled"));
                }
                SaslResponse::Error { consumed } => {
                    self.consume(consumed);
                    return Err(CmdError::bad("SASL response is not valid base64"));
                }
                SaslResponse::Incomplete => {}
            }
            match self.read_input(self.options.pre_auth_timeout()).await? {
                Input::Data => {}
                Input::Closed => {
                    return Err(CmdError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
                Input::Shutdown => {
                    self.bye_shutdown();
                    return Ok(None);
                }
                Input::Timeout => {
                    self.write_status(StatusResponse::bye("autologout; no SASL response"));
                    return Ok(None);
                }
            }
        }
    }

    fn require_plaintext_auth(&self) -> Result<(), CmdError> {
        if self.password_allowed() {
            Ok(())
        } else {
            Err(CmdError::no(
                Code::PrivacyRequired,
                "passwords are not accepted on an unencrypted connection here",
            ))
        }
    }

    async fn finish_login(&mut self, tag: &str, user: &str, password: &str) -> CmdResult {
        let client = self.forwarded_peer.unwrap_or(self.peer);
        let outcome = self.mailstore.log_in(client.ip(), user, password).await;
        match outcome {
            Ok(LoginOutcome::LoggedIn(account)) => {
                tracing::Span::current().record("user", account.address.as_str());
                tracing::info!("logged in");
                self.account = Some(account);
                self.auth_failures = 0;
                let caps = self.capabilities();
                Done::ok_code(Code::Capability(caps), "LOGIN completed")
            }
            Ok(LoginOutcome::Failed) => {
                self.auth_failures += 1;
                tracing::info!(attempt = self.auth_failures, "login failed");
                metrics::counter!("evermail_imap_auth_failures_total").increment(1);
                self.refuse_login(
                    tag,
                    Code::AuthenticationFailed,
                    "invalid user name or password",
                )
                .await
            }
            Ok(LoginOutcome::LockedOut(scope)) => {
                self.auth_failures += 1;
                tracing::info!(scope = scope.as_str(), "login refused: locked out");
                // RFC 5530: UNAVAILABLE is a temporary refusal; a client retries later
                // instead of asking its user for another password, which is what a
                // lockout wants (the right password is refused too until it ends).
                self.refuse_login(tag, Code::Unavailable, "too many failed logins; try later")
                    .await
            }
            Err(e) => Err(CmdError::no(
                Code::Unavailable,
                format!("cannot check the password now: {e}"),
            )),
        }
    }

    /// Answers a failed or refused login after the failure delay, closing the session
    /// after [`MAX_AUTH_FAILURES`].
    async fn refuse_login(&mut self, tag: &str, code: Code, text: &str) -> CmdResult {
        // Only this session waits; the delay makes guessing slow without making the
        // server slow for anyone else.
        tokio::time::sleep(self.options.auth_failure_delay()).await;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.write_status(StatusResponse::no(tag, text).with_code(code));
            self.write_status(StatusResponse::bye("too many failed logins"));
            return Ok(Done::Close);
        }
        Err(CmdError::no(code, text))
    }
}
