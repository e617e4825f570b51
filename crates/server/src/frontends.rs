//! The mail front ends of a node (IMAP, POP3, LMTP listeners) as one unit that can be
//! stopped and started again: a drain stops them the way SIGTERM does (listeners
//! close, IMAP sessions get `BYE [UNAVAILABLE]`, deliveries in progress finish), and
//! an undrain binds the same addresses again, so the node comes back where the
//! cluster's membership rows say it is.

use crate::config::Config;
use anyhow::Context;
use evermail_mailbox::Mailstore;
use evermail_meta::NodeAddress;
use evermail_tls::ListenerTls;
use evermail_tls::rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Service {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
    Lmtp,
}

impl Service {
    /// The name in `listening` lines and in the membership rows.
    fn name(self) -> &'static str {
        match self {
            Service::Imap => "imap",
            Service::Imaps => "imaps",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Lmtp => "lmtp",
        }
    }
}

pub async fn bind(service: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {service} on {addr}"))?;
    // Tests and scripts read these lines to learn the ports (port 0 picks a free one).
    println!("listening {service} {}", listener.local_addr()?);
    Ok(listener)
}

/// Bound listeners, ready to be served by [`FrontEnds::start`].
pub struct Bound(Vec<(Service, TcpListener)>);

pub struct FrontEnds {
    mailstore: Mailstore,
    tls: Arc<ServerConfig>,
    imap: Arc<evermail_imap::ImapOptions>,
    pop3: Arc<evermail_pop3::Pop3Options>,
    lmtp: Arc<evermail_lmtp::LmtpOptions>,
    /// Filled by the first bind: the addresses actually bound (port 0 resolved), which
    /// a rebind reuses.
    addresses: Vec<(Service, SocketAddr)>,
}

impl FrontEnds {
    /// Binds every configured listener (all before serving any, so a port conflict
    /// fails the start instead of leaving a half-running node).
    pub async fn bind(
        config: &Config,
        mailstore: Mailstore,
        tls: Arc<ServerConfig>,
    ) -> anyhow::Result<(FrontEnds, Bound)> {
        let wanted = [
            (Service::Imap, &config.imap.listen),
            (Service::Imaps, &config.imap.tls_listen),
            (Service::Pop3, &config.pop3.listen),
            (Service::Pop3s, &config.pop3.tls_listen),
            (Service::Lmtp, &config.lmtp.listen),
        ];
        let mut bound = Vec::new();
        let mut addresses = Vec::new();
        for (service, addrs) in wanted {
            for addr in addrs {
                let listener = bind(service.name(), *addr).await?;
                addresses.push((service, listener.local_addr()?));
                bound.push((service, listener));
            }
        }
        let mut imap = config.imap.clone();
        imap.proxy_secret = config.cluster.secret.clone();
        let mut pop3 = config.pop3.clone();
        pop3.proxy_secret = config.cluster.secret.clone();
        let frontends = FrontEnds {
            mailstore,
            tls,
            imap: Arc::new(imap),
            pop3: Arc::new(pop3),
            lmtp: Arc::new(config.lmtp.clone()),
            addresses,
        };
        Ok((frontends, Bound(bound)))
    }

    /// Binds the addresses of the first bind again (after an undrain).
    pub async fn rebind(&self) -> anyhow::Result<Bound> {
        let mut bound = Vec::new();
        for (service, addr) in &self.addresses {
            bound.push((*service, bind(service.name(), *addr).await?));
        }
        Ok(Bound(bound))
    }

    /// Serves `listeners` under `tracker` until `stop`; each listener's task ends once
    /// its sessions have.
    pub fn start(&self, listeners: Bound, stop: &CancellationToken, tracker: &TaskTracker) {
        for (service, listener) in listeners.0 {
            let (m, s) = (self.mailstore.clone(), stop.clone());
            let tls = &self.tls;
            match service {
                Service::Imap | Service::Imaps => {
                    let tls = if service == Service::Imap {
                        ListenerTls::StartTls(tls.clone())
                    } else {
                        ListenerTls::Implicit(tls.clone())
                    };
                    let o = self.imap.clone();
                    tracker.spawn(async move {
                        if let Err(e) = evermail_imap::serve(listener, m, o, tls, s).await {
                            tracing::error!(error = %e, "IMAP listener failed");
                        }
                    });
                }
                Service::Pop3 | Service::Pop3s => {
                    let tls = if service == Service::Pop3 {
                        ListenerTls::StartTls(tls.clone())
                    } else {
                        ListenerTls::Implicit(tls.clone())
                    };
                    let o = self.pop3.clone();
                    tracker.spawn(async move {
                        if let Err(e) = evermail_pop3::serve(listener, m, o, tls, s).await {
                            tracing::error!(error = %e, "POP3 listener failed");
                        }
                    });
                }
                Service::Lmtp => {
                    let o = self.lmtp.clone();
                    tracker.spawn(async move {
                        if let Err(e) = evermail_lmtp::serve(listener, m, o, s).await {
                            tracing::error!(error = %e, "LMTP listener failed");
                        }
                    });
                }
            }
        }
    }

    /// The addresses to publish in the membership row. A wildcard listen address says
    /// nothing to a proxy, so it is published with `host` (the node name) instead.
    pub fn published(&self, host: &str, admin: SocketAddr) -> Vec<NodeAddress> {
        let shown = |addr: &SocketAddr| {
            if addr.ip().is_unspecified() {
                format!("{host}:{}", addr.port())
            } else {
                addr.to_string()
            }
        };
        let mut out: Vec<NodeAddress> = self
            .addresses
            .iter()
            .map(|(service, addr)| NodeAddress {
                protocol: service.name().into(),
                address: shown(addr),
            })
            .collect();
        out.push(NodeAddress {
            protocol: "admin".into(),
            address: shown(&admin),
        });
        out
    }
}
