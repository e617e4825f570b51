//! QUOTA (RFC 9208): `GETQUOTA root`, `GETQUOTAROOT mailbox` and
//! `SETQUOTA root (resource limit ...)`.

use crate::cursor::Cursor;
use crate::error::PResult;
use crate::mailbox::MailboxName;

/// `SETQUOTA root (resource limit ...)`; an empty list removes every limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetQuota {
    pub root: String,
    /// Resource names as sent (upper-cased), each with its new limit.
    pub limits: Vec<(String, u64)>,
}

/// ` quota-root`, the argument of GETQUOTA.
pub(crate) fn parse_getquota(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    c.astring_utf8("quota root")
}

pub(crate) fn parse_setquota(c: &mut Cursor<'_>) -> PResult<SetQuota> {
    let root = parse_getquota(c)?;
    c.sp()?;
    let limits = c.list_or_empty(|c| {
        let resource = c.atom()?.to_ascii_uppercase();
        c.sp()?;
        Ok((resource, c.number64()?))
    })?;
    Ok(SetQuota { root, limits })
}

/// ` mailbox`, the argument of GETQUOTAROOT.
pub(crate) fn parse_getquotaroot(c: &mut Cursor<'_>) -> PResult<MailboxName> {
    c.sp()?;
    MailboxName::parse(c)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::check;
    use super::*;
    use crate::CommandBody;

    #[test]
    fn parses_quota_commands() {
        check(&[
            (
                "a GETQUOTA \"\"\r\n",
                Ok(CommandBody::GetQuota(String::new())),
            ),
            (
                "a getquota root\r\n",
                Ok(CommandBody::GetQuota("root".into())),
            ),
            (
                "a GETQUOTAROOT inbox\r\n",
                Ok(CommandBody::GetQuotaRoot(MailboxName::new("INBOX"))),
            ),
            (
                "a SETQUOTA \"\" (STORAGE 512 message 1000)\r\n",
                Ok(CommandBody::SetQuota(SetQuota {
                    root: String::new(),
                    limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 1000)],
                })),
            ),
            (
                "a SETQUOTA \"\" ()\r\n",
                Ok(CommandBody::SetQuota(SetQuota {
                    root: String::new(),
                    limits: vec![],
                })),
            ),
            ("a GETQUOTA\r\n", Err("expected a space")),
            ("a SETQUOTA \"\" (STORAGE)\r\n", Err("expected a space")),
            ("a SETQUOTA \"\" STORAGE 1\r\n", Err("expected '('")),
        ]);
    }
}
