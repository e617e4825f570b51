//! RENAME: a mailbox and its children get new names; renaming INBOX moves its
//! messages into a new mailbox instead.

use evermail_meta::{ErrorKind, MailboxRecord, MetaError, NewMailbox, renamed_mailbox_name};
use evermail_types::MailboxId;
use rusqlite::Connection;

use crate::reader::{query_all, query_opt};
use crate::writer::execute;
use crate::{MailboxColumns, insert_mailbox, mailbox_row, next_modseq};

pub(crate) fn rename_rows(
    conn: &Connection,
    id: MailboxId,
    to: &str,
    delimiter: char,
) -> Result<Vec<MailboxRecord>, MetaError> {
    let mailbox = mailbox_row(conn, id)?;
    let old = mailbox.name.as_str();
    if renamed_mailbox_name(to, old, to, delimiter).is_some() {
        return Err(MetaError::new(
            ErrorKind::Invalid,
            format!("cannot rename {old:?} to itself or under itself"),
        ));
    }
    let all = query_all(
        conn,
        concat!(
            "SELECT ",
            mailbox_columns!(),
            " FROM mailboxes WHERE account_id = ? ORDER BY id"
        ),
        [mailbox.account.0],
        MailboxColumns::from_inline,
    )?
    .into_iter()
    .map(MailboxColumns::record)
    .collect::<Result<Vec<_>, _>>()?;
    let moves: Vec<(MailboxId, String)> = all
        .iter()
        .filter_map(|m| renamed_mailbox_name(&m.name, old, to, delimiter).map(|new| (m.id, new)))
        .collect();
    for (_, new) in &moves {
        if all.iter().any(|m| &m.name == new) {
            return Err(MetaError::new(
                ErrorKind::AlreadyExists,
                format!("mailbox {new:?} already exists"),
            ));
        }
    }
    let mut result = Vec::with_capacity(moves.len());
    for (id, new) in moves {
        execute(
            conn,
            "UPDATE mailboxes SET name = ? WHERE id = ?",
            (&new, id.0),
        )?;
        result.push(mailbox_row(conn, id)?);
    }
    Ok(result)
}

pub(crate) fn move_all_rows(
    conn: &Connection,
    from: MailboxId,
    new: NewMailbox,
) -> Result<MailboxRecord, MetaError> {
    let source = mailbox_row(conn, from)?;
    let target = insert_mailbox(conn, source.account, &new)?;
    execute(
        conn,
        "UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?",
        (
            source.uidnext.get() as i64,
            source.highest_modseq.0 as i64,
            target.id.0,
        ),
    )?;
    let moved: Option<i64> = query_opt(
        conn,
        "SELECT COUNT(*) FROM messages WHERE mailbox_id = ?",
        [from.0],
        |row| row.get(0),
    )?;
    if moved.unwrap_or(0) > 0 {
        let modseq = next_modseq(conn, from)?;
        execute(
            conn,
            "INSERT INTO expunged (mailbox_id, uid, modseq)
             SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ?",
            (modseq.0 as i64, from.0),
        )?;
        execute(
            conn,
            "UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?",
            (target.id.0, from.0),
        )?;
    }
    mailbox_row(conn, target.id)
}
