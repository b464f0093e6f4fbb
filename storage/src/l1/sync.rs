//! `l1_sync`: where the watcher's scan is, and its advisory lock.

use sqlx::PgConnection;

use crate::convert::i64_of;
use crate::Result;

use super::WATCHER_LOCK;

/// Where the watcher's scan is. Every block at or below the returned `final_block` is past the
/// confirmation depth and fully processed; `None` before the first poll.
pub async fn final_block(db: &mut PgConnection) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT final_block FROM l1_sync")
        .fetch_optional(db)
        .await?)
}

/// Takes the watcher's advisory lock until the caller's transaction ends.
pub async fn lock_watcher(db: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WATCHER_LOCK)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves the watcher's cursor. `final_block` may be -1 (nothing final yet).
pub async fn save_sync(
    db: &mut PgConnection,
    final_block: i64,
    last_block: u64,
    last_hash: [u8; 32],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO l1_sync (id, final_block, last_block, last_hash) VALUES (TRUE, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET final_block = $1, last_block = $2, last_hash = $3, \
         updated_at = now()",
    )
    .bind(final_block)
    .bind(i64_of(last_block))
    .bind(last_hash.to_vec())
    .execute(db)
    .await?;
    Ok(())
}
