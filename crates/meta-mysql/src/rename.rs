//! RENAME: a mailbox and its children get new names; renaming INBOX moves its
//! messages into a new mailbox instead. Mirrors the SQLite backend's `rename`, with
//! the rows it depends on read `FOR UPDATE`.

use evermail_meta::{ErrorKind, MailboxRecord, MetaError, NewMailbox, renamed_mailbox_name};
use evermail_types::MailboxId;
use sqlx::MySqlConnection;

use crate::retry::{TxError, db};
use crate::rows::{MAILBOX_COLUMNS, insert_mailbox, mailbox_from_row, next_modseq};

async fn mailbox_row(conn: &mut MySqlConnection, id: MailboxId) -> Result<MailboxRecord, TxError> {
    let row = sqlx::query(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ? FOR UPDATE"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .ok_or_else(|| MetaError::not_found(format!("mailbox {}", id.0)))?;
    mailbox_from_row(&row)
}

pub(crate) async fn rename_rows(
    conn: &mut MySqlConnection,
    id: MailboxId,
    to: &str,
    delimiter: char,
) -> Result<Vec<MailboxRecord>, TxError> {
    let mailbox = mailbox_row(conn, id).await?;
    let old = mailbox.name.as_str();
    if renamed_mailbox_name(to, old, to, delimiter).is_some() {
        return Err(MetaError::new(
            ErrorKind::Invalid,
            format!("cannot rename {old:?} to itself or under itself"),
        )
        .into());
    }
    // Locking every mailbox row of the account makes a concurrent CREATE or RENAME
    // of the same account wait here, or fail certification and be replayed.
    let rows = sqlx::query(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY id FOR UPDATE"
    ))
    .bind(mailbox.account.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let all = rows
        .iter()
        .map(mailbox_from_row)
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
            )
            .into());
        }
    }
    let mut result = Vec::with_capacity(moves.len());
    for (id, new) in moves {
        sqlx::query("UPDATE mailboxes SET name = ? WHERE id = ?")
            .bind(&new)
            .bind(id.0)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        result.push(mailbox_row(conn, id).await?);
    }
    Ok(result)
}

pub(crate) async fn move_all_rows(
    conn: &mut MySqlConnection,
    from: MailboxId,
    new: &NewMailbox,
) -> Result<MailboxRecord, TxError> {
    let source = mailbox_row(conn, from).await?;
    let target = insert_mailbox(conn, source.account, new).await?;
    sqlx::query("UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?")
        .bind(source.uidnext.get() as i64)
        .bind(source.highest_modseq.0 as i64)
        .bind(target.id.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let moved: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE mailbox_id = ?")
        .bind(from.0)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if moved > 0 {
        let modseq = next_modseq(conn, from).await?;
        sqlx::query(
            "INSERT INTO expunged (mailbox_id, uid, modseq)
             SELECT mailbox_id, uid, ? FROM messages WHERE mailbox_id = ?",
        )
        .bind(modseq.0 as i64)
        .bind(from.0)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        sqlx::query("UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?")
            .bind(target.id.0)
            .bind(from.0)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    mailbox_row(conn, target.id).await
}
