//! RENAME: a mailbox and its children get new names; renaming INBOX moves its
//! messages into a new mailbox instead.

use evermail_meta::{ErrorKind, MailboxRecord, MetaError, NewMailbox, renamed_mailbox_name};
use evermail_types::MailboxId;
use sqlx::SqliteConnection;

use crate::{MAILBOX_COLUMNS, db_error, insert_mailbox, mailbox_from_row, next_modseq};

async fn mailbox_row(
    conn: &mut SqliteConnection,
    id: MailboxId,
) -> Result<MailboxRecord, MetaError> {
    let row = sqlx::query(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?"
    ))
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?
    .ok_or_else(|| MetaError::not_found(format!("mailbox {}", id.0)))?;
    mailbox_from_row(&row)
}

pub(crate) async fn rename_rows(
    conn: &mut SqliteConnection,
    id: MailboxId,
    to: &str,
    delimiter: char,
) -> Result<Vec<MailboxRecord>, MetaError> {
    let mailbox = mailbox_row(conn, id).await?;
    let old = mailbox.name.as_str();
    if renamed_mailbox_name(to, old, to, delimiter).is_some() {
        return Err(MetaError::new(
            ErrorKind::Invalid,
            format!("cannot rename {old:?} to itself or under itself"),
        ));
    }
    let rows = sqlx::query(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ? ORDER BY id"
    ))
    .bind(mailbox.account.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
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
            ));
        }
    }
    let mut result = Vec::with_capacity(moves.len());
    for (id, new) in moves {
        sqlx::query("UPDATE mailboxes SET name = ? WHERE id = ?")
            .bind(&new)
            .bind(id.0)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        result.push(mailbox_row(conn, id).await?);
    }
    Ok(result)
}

pub(crate) async fn move_all_rows(
    conn: &mut SqliteConnection,
    from: MailboxId,
    new: NewMailbox,
) -> Result<MailboxRecord, MetaError> {
    let source = mailbox_row(conn, from).await?;
    let target = insert_mailbox(conn, source.account, &new).await?;
    sqlx::query("UPDATE mailboxes SET uidnext = ?, highest_modseq = ? WHERE id = ?")
        .bind(source.uidnext.get() as i64)
        .bind(source.highest_modseq.0 as i64)
        .bind(target.id.0)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let moved: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE mailbox_id = ?")
        .bind(from.0)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
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
        .map_err(db_error)?;
        sqlx::query("UPDATE messages SET mailbox_id = ? WHERE mailbox_id = ?")
            .bind(target.id.0)
            .bind(from.0)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    mailbox_row(conn, target.id).await
}
