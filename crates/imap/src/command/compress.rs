//! COMPRESS (RFC 4978): after login, the session's stream becomes raw DEFLATE both ways.

use evermail_imap_proto::response::{Code, StatusResponse};

use crate::compress::Deflate;
use crate::session::{CmdError, CmdResult, Done, Session};

impl Session {
    pub(crate) async fn compress(&mut self, tag: &str, mechanism: &str) -> CmdResult {
        // Offered only once authenticated, so a login cannot be hidden from the
        // plaintext checks by compressing it (RFC 4978 section 3 allows either).
        self.account()?;
        if self.deflate.is_some() {
            return Err(CmdError::no(
                Code::Other {
                    name: "COMPRESSIONACTIVE".into(),
                    value: None,
                },
                "DEFLATE is already active",
            ));
        }
        if mechanism != "DEFLATE" {
            return Err(CmdError::bad(format!(
                "unknown compression mechanism {mechanism}"
            )));
        }
        self.write_status(StatusResponse::ok(tag, "DEFLATE active"));
        self.flush().await?;
        // Whatever the client sent after the command is already compressed.
        let mut deflate = Box::new(Deflate::new());
        deflate.raw = std::mem::take(&mut self.input);
        deflate.inflate_into(&mut self.input)?;
        self.deflate = Some(deflate);
        metrics::counter!("evermail_imap_compress_total").increment(1);
        Ok(Done::Replied)
    }
}
