//! XCLIENT: a proxy (`evermail proxy`) names the client it speaks for, before login,
//! proving it with the cluster secret; the failed-login lockout and the logs then use
//! the client's address instead of the proxy's. Without the right secret the claim is
//! refused and changes nothing.

use std::net::{IpAddr, SocketAddr};

use evermail_pop3_proto::Response;

use crate::session::{CmdResult, Flow, Session};

impl Session {
    pub(crate) fn xclient(&mut self, addr: &str, port: Option<&str>, secret: &str) -> CmdResult {
        let trusted = self
            .options
            .proxy_secret
            .as_deref()
            .is_some_and(|mine| secrets_match(mine, secret));
        if !trusted {
            tracing::warn!(peer = %self.peer, "XCLIENT without the cluster secret");
            self.reply(Response::err("not a trusted proxy"));
            return Ok(Flow::Continue);
        }
        let (Ok(ip), Ok(port)) = (
            addr.parse::<IpAddr>(),
            port.map_or(Ok(0), |p| p.parse::<u16>()),
        ) else {
            self.reply(Response::err(
                "XCLIENT ADDR must be an IP address, PORT a number",
            ));
            return Ok(Flow::Continue);
        };
        let client = SocketAddr::new(ip, port);
        tracing::info!(proxy = %self.peer, %client, "session forwarded by a proxy");
        self.forwarded_peer = Some(client);
        self.reply(Response::ok(""));
        Ok(Flow::Continue)
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
