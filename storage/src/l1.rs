//! (being written: see the module table in lib.rs)

use sqlx::PgPool;

pub struct L1Dal<'a> {
    #[allow(dead_code)]
    pool: &'a PgPool,
}

impl<'a> L1Dal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        L1Dal { pool }
    }
}
