//! (being written: see the module table in lib.rs)

use sqlx::PgPool;

pub struct JobsDal<'a> {
    #[allow(dead_code)]
    pool: &'a PgPool,
}

impl<'a> JobsDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        JobsDal { pool }
    }
}
