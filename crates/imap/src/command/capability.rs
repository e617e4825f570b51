//! What the server says about itself: CAPABILITY, ENABLE, ID, NAMESPACE; and LOGOUT.

use evermail_imap_proto::command::Enable;
use evermail_imap_proto::response::{Code, Data, Namespace, StatusKind, StatusResponse};

use super::DELIMITER;
use crate::session::{CmdResult, Done, Session};

/// Whether CAPABILITY lists IMAP4rev2 (and so ENABLE IMAP4rev2 is honoured). A rev2
/// server must also offer BINARY, ESEARCH, SEARCHRES, LIST-EXTENDED, LIST-STATUS,
/// LITERAL- and STATUS=SIZE, which it does; after ENABLE IMAP4rev2 mailbox names are
/// UTF-8, SEARCH answers with ESEARCH, \Recent and RECENT are gone, and SELECT
/// reports the mailbox's LIST line and `[CLOSED]`.
pub(crate) const OFFER_REV2: bool = true;

/// Extensions offered in every state, in the order listed.
const EXTENSIONS: &[&str] = &[
    "SASL-IR",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "ID",
    "UNSELECT",
    "UIDPLUS",
    "MULTIAPPEND",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "MOVE",
    "CHILDREN",
    "SPECIAL-USE",
    "CONDSTORE",
    "QRESYNC",
    "BINARY",
    "ESEARCH",
    "SEARCHRES",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "STATUS=SIZE",
    "SORT",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "OBJECTID",
    "UTF8=ACCEPT",
];

impl Session {
    /// The capability list for this session's state and connection.
    pub(crate) fn capabilities(&self) -> Vec<String> {
        let mut caps = vec!["IMAP4rev1".to_string()];
        if OFFER_REV2 {
            caps.push("IMAP4rev2".into());
        }
        if self.account.is_none() {
            // Only before TLS and only where it can be done (RFC 9051 section 6.2.1);
            // after STARTTLS the list no longer offers it.
            if self.starttls.is_some() && !self.stream.is_tls() {
                caps.push("STARTTLS".into());
            }
            if self.password_allowed() {
                caps.push("AUTH=PLAIN".into());
            } else {
                caps.push("LOGINDISABLED".into());
            }
        }
        // RFC 7888: a server offers one of the two. Before login non-synchronizing
        // literals are limited to 4096 bytes (LITERAL-, which IMAP4rev2 requires);
        // after it, APPEND may send a whole message without waiting (LITERAL+).
        caps.push(
            if self.account.is_none() {
                "LITERAL-"
            } else {
                "LITERAL+"
            }
            .into(),
        );
        caps.extend(EXTENSIONS.iter().map(|c| c.to_string()));
        // RFC 4978: after login, and not once active.
        if self.account.is_some() && self.deflate.is_none() {
            caps.push("COMPRESS=DEFLATE".into());
        }
        caps.push(format!("APPENDLIMIT={}", self.options.max_message_size));
        caps
    }

    pub(crate) fn capability(&mut self) -> CmdResult {
        let caps = self.capabilities();
        self.write_data(Data::Capability(caps));
        Done::ok("CAPABILITY completed")
    }

    /// RFC 5161: unknown or not offered capabilities are ignored, not refused.
    pub(crate) fn enable(&mut self, enable: Enable) -> CmdResult {
        self.account()?;
        let mut enabled = Vec::new();
        for cap in enable.capabilities {
            match cap.as_str() {
                "IMAP4REV2" if OFFER_REV2 && !self.rev2 => {
                    self.rev2 = true;
                    enabled.push("IMAP4rev2".to_string());
                }
                "CONDSTORE" if !self.enabled.condstore => {
                    self.enable_condstore();
                    enabled.push("CONDSTORE".to_string());
                }
                "UTF8=ACCEPT" if !self.enabled.utf8_accept => {
                    self.enabled.utf8_accept = true;
                    enabled.push("UTF8=ACCEPT".to_string());
                }
                // QRESYNC implies CONDSTORE (RFC 7162 section 3.2.3), which is
                // then on without being listed.
                "QRESYNC" if !self.enabled.qresync => {
                    self.enable_condstore();
                    self.enabled.qresync = true;
                    enabled.push("QRESYNC".to_string());
                }
                _ => {}
            }
        }
        self.write_data(Data::Enabled(enabled));
        Done::ok("ENABLE completed")
    }

    /// Turns CONDSTORE on, as ENABLE and every "CONDSTORE enabling command" do (RFC 7162
    /// section 3.1).
    pub(crate) fn enable_condstore(&mut self) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        // RFC 7162 section 3.1: turned on in the selected state, the client learns the
        // mailbox's HIGHESTMODSEQ before the command completes.
        if let Some(modseq) = self.selected.as_ref().map(|s| s.reportable_modseq()) {
            self.write_status(
                StatusResponse::new(None, StatusKind::Ok, "CONDSTORE enabled")
                    .with_code(Code::HighestModSeq(modseq.0)),
            );
        }
    }

    /// RFC 2971. The client's own ID is only logged.
    pub(crate) fn id(&mut self, params: Option<Vec<(String, Option<String>)>>) -> CmdResult {
        if let Some(params) = params {
            let summary: Vec<String> = params
                .iter()
                .take(8)
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("NIL")))
                .collect();
            tracing::debug!(client = %summary.join(" "), "client ID");
            self.accept_forwarded_peer(&params);
        }
        self.write_data(Data::Id(Some(vec![
            ("name".into(), Some("evermail".into())),
            ("version".into(), Some(env!("CARGO_PKG_VERSION").into())),
        ])));
        Done::ok("ID completed")
    }

    /// A proxy speaking for a client says so in `ID`, with the cluster secret, before
    /// the client logs in (Dovecot's `x-originating-ip` convention). Without the
    /// right secret, or after login, the claim is ignored.
    fn accept_forwarded_peer(&mut self, params: &[(String, Option<String>)]) {
        let value = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .and_then(|(_, v)| v.as_deref())
        };
        let Some(offered) = value("x-evermail-proxy") else {
            return;
        };
        let trusted = self
            .options
            .proxy_secret
            .as_deref()
            .is_some_and(|secret| secrets_match(secret, offered));
        if !trusted || self.account.is_some() {
            tracing::warn!(peer = %self.peer, "ID claims to be a proxy without the cluster secret");
            return;
        }
        let ip = value("x-originating-ip").and_then(|v| v.parse().ok());
        let port = value("x-originating-port").and_then(|v| v.parse().ok());
        if let Some(ip) = ip {
            let client = std::net::SocketAddr::new(ip, port.unwrap_or(0));
            tracing::info!(proxy = %self.peer, %client, "session forwarded by a proxy");
            self.forwarded_peer = Some(client);
        }
    }

    /// One personal namespace with no prefix; no other users' or shared namespaces.
    pub(crate) fn namespace(&mut self) -> CmdResult {
        self.account()?;
        self.write_data(Data::Namespace {
            personal: vec![Namespace {
                prefix: String::new(),
                delimiter: Some(DELIMITER),
            }],
            other: Vec::new(),
            shared: Vec::new(),
        });
        Done::ok("NAMESPACE completed")
    }

    pub(crate) fn logout(&mut self, tag: &str) -> CmdResult {
        self.write_status(StatusResponse::bye("evermail logging out"));
        self.write_status(StatusResponse::ok(tag, "LOGOUT completed"));
        Ok(Done::Close)
    }
}

/// Compares in time independent of where the first difference is.
fn secrets_match(secret: &str, offered: &str) -> bool {
    let (a, b) = (secret.as_bytes(), offered.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0 && !a.is_empty()
}
