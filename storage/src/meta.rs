//! `chain_meta`: parameters fixed at genesis (chain id, rollup address, operator key, deposit
//! source). A node refuses to start against a database created for other parameters.

use sqlx::PgPool;

use crate::{Result, StorageError};

#[derive(Clone, Copy, Debug)]
pub struct MetaDal<'a> {
    pool: &'a PgPool,
}

impl<'a> MetaDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        MetaDal { pool }
    }

    pub async fn get(self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar!("SELECT value FROM chain_meta WHERE key = $1", key)
                .fetch_optional(self.pool)
                .await?,
        )
    }

    /// Stores `value` under `key` unless a value is there already; returns the stored value.
    pub async fn init(self, key: &str, value: &str) -> Result<String> {
        sqlx::query!(
            "INSERT INTO chain_meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            key,
            value
        )
        .execute(self.pool)
        .await?;
        self.get(key)
            .await?
            .ok_or_else(|| StorageError::Corrupt(format!("meta {key} vanished")))
    }
}
