//! (being written: see the module table in lib.rs)

use sqlx::PgPool;

pub struct FeedDal<'a> {
    #[allow(dead_code)]
    pool: &'a PgPool,
}

impl<'a> FeedDal<'a> {
    pub(crate) fn new(pool: &'a PgPool) -> Self {
        FeedDal { pool }
    }
}
