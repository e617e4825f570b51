//! QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA and SETQUOTA.
//!
//! An account has one quota, on storage, so there is one quota root, `""`, shared by
//! every mailbox of the account, and only when a limit is set. Limits are set by the
//! administrator (`evermail account quota`); SETQUOTA is refused with `NOPERM`, since
//! no IMAP user is an administrator here. Over-quota APPEND, COPY and MOVE answer
//! `NO [OVERQUOTA]` through the usual mapping of mail errors.

use evermail_imap_proto::MailboxName;
use evermail_imap_proto::command::SetQuota;
use evermail_imap_proto::response::{Code, Data, QuotaResource};
use evermail_types::AccountId;

use crate::session::{CmdError, CmdResult, Done, Session};

/// The one quota root of an account.
const ROOT: &str = "";

impl Session {
    /// The account's quota root as a QUOTA response, or `None` when it has no limit.
    async fn quota_data(&self, account: AccountId) -> Result<Option<Data>, CmdError> {
        let (used, quota) = self.mailstore.usage(account).await?;
        Ok(quota.map(|limit| Data::Quota {
            root: ROOT.to_string(),
            resources: vec![QuotaResource {
                name: "STORAGE",
                // Units of 1024 octets: usage rounds up and the limit down, so a
                // client never believes there is room that is not there.
                usage: used.div_ceil(1024),
                limit: limit / 1024,
            }],
        }))
    }

    pub(crate) async fn getquotaroot(&mut self, name: MailboxName) -> CmdResult {
        let account = self.account()?;
        let mailbox = self
            .find_mailbox(account.id, &name, Code::NonExistent)
            .await?;
        let quota = self.quota_data(account.id).await?;
        let roots = match quota {
            Some(_) => vec![ROOT.to_string()],
            None => Vec::new(),
        };
        self.write_data(Data::QuotaRoot {
            mailbox: self.encode_name(&mailbox.name),
            roots,
        });
        if let Some(quota) = quota {
            self.write_data(quota);
        }
        Done::ok("GETQUOTAROOT completed")
    }

    pub(crate) async fn getquota(&mut self, root: String) -> CmdResult {
        let account = self.account()?;
        match self.quota_data(account.id).await? {
            Some(quota) if root == ROOT => {
                self.write_data(quota);
                Done::ok("GETQUOTA completed")
            }
            _ => Err(CmdError::no(
                Code::NonExistent,
                format!("no quota root {root:?}"),
            )),
        }
    }

    pub(crate) fn setquota(&mut self, _set: SetQuota) -> CmdResult {
        self.account()?;
        Err(CmdError::no(
            Code::NoPerm,
            "quotas are set by the administrator",
        ))
    }
}
