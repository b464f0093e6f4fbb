//! Priority-op deadlines, checked before a batch is sealed (SPEC 16.2).
//!
//! `Rollup.commitBatch` refuses a batch that leaves the queued priority op `next` (the first
//! one it does not consume) unconsumed once that op's deadline has passed (`PriorityOpOverdue`).
//! A batch is committed some time after it is sealed (proving, then the confirmation depth), so
//! a batch sealed too close to such a deadline is sealed for nothing: it will be refused at
//! commit, and every batch after it waits behind it. The writer asks [`check`] before sealing
//! and, when the batch is at risk, keeps it open so that it also takes the op (the ingest
//! hands it over as soon as it is confirmed on L1), up to [`HOLD_LIMIT`] times its usual size.
//!
//! Only op `next` matters: deadlines grow with the serial (enqueue time plus a fixed period),
//! so a batch that consumes it is safe for every later one as well.
//!
//! The ingest reads the open ops' deadlines from `l1_priority_ops` at every tick and hands them
//! over through [`OpenDeadlines`]; the writer reads them without touching the database.

use std::sync::Mutex;

/// A held batch is sealed anyway once it has this many times `batch_max_blocks` blocks: the op
/// it waits for is not coming (the ingest is stuck), and an ever-growing batch would soon be
/// too large to prove. It is sealed with an error logged, and the operator is alerted by
/// `rollup_batch_sealed_at_risk_total`.
pub const HOLD_LIMIT: u64 = 4;

/// The deadlines of the L1 priority ops not consumed yet, as the ingest last read them.
#[derive(Debug, Default)]
pub struct OpenDeadlines {
    /// `(serial, deadline)`, in serial order.
    ops: Mutex<Vec<(u64, u64)>>,
}

impl OpenDeadlines {
    pub fn replace(&self, ops: Vec<(u64, u64)>) {
        if let Ok(mut g) = self.ops.lock() {
            *g = ops;
        }
    }

    /// The deadline of op `serial`, if it is open and its deadline known.
    pub fn of(&self, serial: u64) -> Option<u64> {
        let g = self.ops.lock().ok()?;
        g.binary_search_by_key(&serial, |&(s, _)| s)
            .ok()
            .and_then(|i| g.get(i))
            .map(|&(_, d)| d)
    }
}

/// What [`check`] says about sealing a batch now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealCheck {
    /// Nothing the batch leaves unconsumed is due before it can be committed.
    Clear,
    /// The batch leaves op `serial` unconsumed, and its `deadline` (L1 time, unix seconds)
    /// falls before `now + margin`, the earliest the batch can be expected on L1.
    AtRisk { serial: u64, deadline: u64 },
}

/// Whether a batch whose first unconsumed priority op is `next` (with deadline
/// `next_deadline`, `None`: no such op is queued, or its deadline is unknown) can still be
/// committed if it is sealed at `now` and takes `margin` seconds to reach L1.
pub fn check(next: u64, next_deadline: Option<u64>, now: u64, margin: u64) -> SealCheck {
    match next_deadline {
        Some(deadline) if deadline < now.saturating_add(margin) => SealCheck::AtRisk {
            serial: next,
            deadline,
        },
        _ => SealCheck::Clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_at_risk_only_when_the_op_it_leaves_is_due_before_it_can_be_committed() {
        // No queued op left behind: always clear.
        assert_eq!(check(7, None, 1_000, 600), SealCheck::Clear);
        // Due after the margin: clear; exactly at `now + margin` the contract still accepts
        // (`deadline < block.timestamp` refuses), so that is clear as well.
        assert_eq!(check(7, Some(1_601), 1_000, 600), SealCheck::Clear);
        assert_eq!(check(7, Some(1_600), 1_000, 600), SealCheck::Clear);
        // Due within the margin, or already past: at risk, naming the op.
        assert_eq!(
            check(7, Some(1_599), 1_000, 600),
            SealCheck::AtRisk {
                serial: 7,
                deadline: 1_599
            }
        );
        assert_eq!(
            check(7, Some(10), 1_000, 0),
            SealCheck::AtRisk {
                serial: 7,
                deadline: 10
            }
        );
        // A margin near u64::MAX does not wrap around into "clear".
        assert!(matches!(
            check(7, Some(5), 1_000, u64::MAX),
            SealCheck::AtRisk { .. }
        ));
    }

    #[test]
    fn the_open_deadlines_are_looked_up_by_serial() {
        let open = OpenDeadlines::default();
        assert_eq!(open.of(3), None);
        open.replace(vec![(3, 100), (4, 110), (9, 200)]);
        assert_eq!(open.of(3), Some(100));
        assert_eq!(open.of(9), Some(200));
        assert_eq!(open.of(5), None, "an op not open (consumed, or not queued)");
        open.replace(vec![(9, 200)]);
        assert_eq!(open.of(3), None, "replaced, not merged");
    }
}
