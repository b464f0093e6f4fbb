//! The tree nodes a transaction's accesses wrote, over the state's tree before it: each
//! access opens the root the previous one left.

use std::collections::HashMap;

use state::hash::Digest;
use state::smt::{hash_up, DEPTH};

use super::AccountFields;

/// Nodes written by the accesses of the current transaction, over the state's tree before it,
/// and the accounts written through [`Overlay::write_account`].
#[derive(Default)]
pub(crate) struct Overlay {
    nodes: HashMap<(usize, u64), Digest>,
    accounts: HashMap<u32, AccountFields>,
}

impl Overlay {
    /// The account last written at `index` through [`Overlay::write_account`], if any (else
    /// the state's is current).
    pub(crate) fn account(&self, index: u32) -> Option<AccountFields> {
        self.accounts.get(&index).copied()
    }

    /// Writes `fields` at `index`, whose siblings before the transaction are `base`; returns
    /// the siblings it was written under and the new root.
    pub(crate) fn write_account(
        &mut self,
        index: u32,
        fields: AccountFields,
        base: &[Digest],
    ) -> (Vec<Digest>, Digest) {
        let siblings = self.siblings(index, base);
        let root = self.write(index, fields.leaf(), &siblings);
        self.accounts.insert(index, fields);
        (siblings, root)
    }

    /// Siblings of `index` in the tree as modified so far, from its proof before the transaction.
    pub(crate) fn siblings(&self, index: u32, base: &[Digest]) -> Vec<Digest> {
        (0..DEPTH)
            .map(|l| {
                let pos = ((index as u64) >> l) ^ 1;
                self.nodes.get(&(l, pos)).copied().unwrap_or(base[l])
            })
            .collect()
    }

    /// The root after the writes so far (`None` before the first).
    pub(crate) fn root(&self) -> Option<Digest> {
        self.nodes.get(&(DEPTH, 0)).copied()
    }

    /// Writes `leaf` at `index` with `siblings`; returns the new root.
    pub(crate) fn write(&mut self, index: u32, leaf: Digest, siblings: &[Digest]) -> Digest {
        let mut cur = leaf;
        self.nodes.insert((0, index as u64), cur);
        for (l, sib) in siblings.iter().enumerate() {
            let pos = (index as u64) >> l;
            cur = hash_up(cur, *sib, pos & 1 == 1);
            self.nodes.insert((l + 1, pos >> 1), cur);
        }
        cur
    }
}
