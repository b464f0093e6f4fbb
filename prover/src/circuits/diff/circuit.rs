//! The version 1 diff circuit: its targets, the constraints (module docs of [`super`]) and
//! proving a chunk against its statement.

use anyhow::ensure;
use plonky2::field::types::Field;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::{PartialWitness, WitnessWrite};
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::ProofWithPublicInputs;

use crate::gadgets::range::{range_check_u63, range_check_u64};
use crate::gadgets::smt::{zero_digest, MerklePathTarget};
use crate::{C, D, F};

use super::common::{
    account_leaf, gated_update, in_order, le_bytes, record_bytes, DiffEnds, Key, StartTargets,
};
use super::witness::DiffWitness;
use super::{DiffStatement, DIFF_PUBLIC_INPUTS, DIFF_VERSION};

struct OldTargets {
    used: BoolTarget,
    index: Target,
    key: [Target; 5],
    balance_before: Target,
    nonce_before: Target,
    balance: Target,
    nonce: Target,
    ext: HashOutTarget,
    path: MerklePathTarget,
}

struct NewTargets {
    used: BoolTarget,
    key: [Target; 5],
    balance: Target,
    nonce: Target,
    path: MerklePathTarget,
}

pub(super) struct Targets {
    start: StartTargets,
    old: Vec<OldTargets>,
    new: Vec<NewTargets>,
}

/// The diff circuit for `cap_old` + `cap_new` record slots.
pub struct DiffCircuit {
    pub data: CircuitData<F, C, D>,
    targets: Targets,
    pub cap_old: usize,
    pub cap_new: usize,
}

impl DiffCircuit {
    pub fn build(cap_old: usize, cap_new: usize) -> DiffCircuit {
        Self::build_or_load(cap_old, cap_new, &crate::cache::CircuitCache::disabled())
            .expect("an uncached, unpinned build cannot be refused")
    }

    /// [`DiffCircuit::build`] through `cache` (key: [`DIFF_VERSION`] and the capacities).
    pub fn build_or_load(
        cap_old: usize,
        cap_new: usize,
        cache: &crate::cache::CircuitCache,
    ) -> anyhow::Result<DiffCircuit> {
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let (targets, _) = Self::define(&mut b, cap_old, cap_new);
        let key = format!("{DIFF_VERSION}/old={cap_old}/new={cap_new}/config=standard_recursion");
        let spec = crate::cache::CircuitSpec {
            name: "diff-chunk",
            key: &key,
            num_public_inputs: DIFF_PUBLIC_INPUTS,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(DiffCircuit {
            data,
            targets,
            cap_old,
            cap_new,
        })
    }

    /// Adds the constraints to `b`; returns the targets and the number of rows before the
    /// record slots, after the old slots and after the new slots (for the cost report).
    pub(super) fn define(
        b: &mut CircuitBuilder<F, D>,
        cap_old: usize,
        cap_new: usize,
    ) -> (Targets, [usize; 3]) {
        let one = b.one();
        // Where the chunk starts (`count_before` opened under the batch's old root).
        let (start, mut stream) = StartTargets::define(b);
        let (count_before, last_index) = (start.count.count_before, start.count.last_index);
        let (root_in, records_in, lower_in, new_in, started_in) = (
            start.root_in,
            start.records_in,
            start.lower_in,
            start.new_in,
            start.started_in,
        );
        let start_rows = b.num_gates();

        let mut root = root_in;
        let mut records = records_in;
        let mut lower = lower_in;
        let mut prev_used = b._true();
        let mut old = Vec::with_capacity(cap_old);
        for _ in 0..cap_old {
            let used = b.add_virtual_bool_target_safe();
            // Used slots first; none once new accounts' records started.
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            let late = b.mul(used.target, started_in.target);
            b.assert_zero(late);
            records = b.add(records, used.target);

            let index = b.add_virtual_target();
            let index_bits = b.split_le(index, 32);
            in_order(b, used, index, lower, last_index);
            let next = b.add(index, one);
            lower = b.select(used, next, lower);

            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance_before = b.add_virtual_target();
            let nonce_before = b.add_virtual_target();
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            // One witnessed ext in both leaves: a record cannot change it.
            let ext = b.add_virtual_hash();
            let path = MerklePathTarget::new(b);
            let old_leaf = account_leaf(b, &key, balance_before, nonce_before, &ext);
            let new_leaf = account_leaf(b, &key, balance, nonce, &ext);
            root = gated_update(b, used, root, old_leaf, new_leaf, &index_bits, &path);

            let bytes = record_bytes(b, &index_bits, &balance_u, &nonce_u);
            stream.append(b, &bytes, used);
            old.push(OldTargets {
                used,
                index,
                key,
                balance_before,
                nonce_before,
                balance,
                nonce,
                ext,
                path,
            });
        }
        let old_rows = b.num_gates();

        let mut prev_used = b._true();
        let mut new_count = new_in;
        let mut started = started_in;
        let mut new = Vec::with_capacity(cap_new);
        for _ in 0..cap_new {
            let used = b.add_virtual_bool_target_safe();
            let p = b.mul(used.target, prev_used.target);
            b.connect(p, used.target);
            prev_used = used;
            records = b.add(records, used.target);

            // New accounts are consecutive from count_before (below 2^32: the split checks it).
            let index = b.add(count_before, new_count);
            let index_bits = b.split_le(index, 32);
            new_count = b.add(new_count, used.target);
            started = b.or(started, used);
            let key: [Target; 5] = core::array::from_fn(|_| b.add_virtual_target());
            let balance = b.add_virtual_target();
            let balance_u = range_check_u63(b, balance);
            let nonce = b.add_virtual_target();
            let nonce_u = range_check_u63(b, nonce);
            let path = MerklePathTarget::new(b);
            // A new account starts without agent fields (a version 1 diff cannot give any).
            let no_ext = zero_digest(b);
            let new_leaf = account_leaf(b, &key, balance, nonce, &no_ext);
            let empty = zero_digest(b);
            root = gated_update(b, used, root, empty, new_leaf, &index_bits, &path);

            let mut bytes = record_bytes(b, &index_bits, &balance_u, &nonce_u);
            for &k in &key {
                let bits = range_check_u64(b, k);
                bytes.extend(le_bytes(b, &bits));
            }
            stream.append(b, &bytes, used);
            new.push(NewTargets {
                used,
                key,
                balance,
                nonce,
                path,
            });
        }
        let new_rows = b.num_gates();

        let stream_out = stream.export(b);
        DiffEnds {
            start: &start,
            root_out: root,
            stream_out: &stream_out,
            records_out: records,
            lower_out: lower,
            new_out: new_count,
            started_out: started,
        }
        .register(b);
        let targets = Targets { start, old, new };
        (targets, [start_rows, old_rows, new_rows])
    }

    /// Proves `w` for `statement` (the public inputs are checked against it).
    pub fn prove(
        &self,
        w: &DiffWitness,
        statement: &DiffStatement,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            w.old.len() == self.cap_old && w.new.len() == self.cap_new,
            "the witness has {} + {} slots, the circuit {} + {}",
            w.old.len(),
            w.new.len(),
            self.cap_old,
            self.cap_new
        );
        let t = &self.targets;
        let mut pw = PartialWitness::new();
        let f = F::from_canonical_u64;
        let set_key = |pw: &mut PartialWitness<F>, ts: &[Target; 5], k: &Key| {
            for (t, v) in ts.iter().zip(k) {
                pw.set_target(*t, F::from_noncanonical_u64(*v))?;
            }
            anyhow::Ok(())
        };
        t.start.set(&mut pw, &w.start)?;
        for (ts, s) in t.old.iter().zip(&w.old) {
            pw.set_bool_target(ts.used, s.used)?;
            pw.set_target(ts.index, f(u64::from(s.index)))?;
            set_key(&mut pw, &ts.key, &s.key)?;
            pw.set_target(
                ts.balance_before,
                F::from_noncanonical_u64(s.balance_before),
            )?;
            pw.set_target(ts.nonce_before, F::from_noncanonical_u64(s.nonce_before))?;
            pw.set_target(ts.balance, F::from_noncanonical_u64(s.balance))?;
            pw.set_target(ts.nonce, F::from_noncanonical_u64(s.nonce))?;
            pw.set_hash_target(ts.ext, s.ext.into())?;
            ts.path.set(&mut pw, &s.siblings)?;
        }
        for (ts, s) in t.new.iter().zip(&w.new) {
            pw.set_bool_target(ts.used, s.used)?;
            set_key(&mut pw, &ts.key, &s.key)?;
            pw.set_target(ts.balance, F::from_noncanonical_u64(s.balance))?;
            pw.set_target(ts.nonce, F::from_noncanonical_u64(s.nonce))?;
            ts.path.set(&mut pw, &s.siblings)?;
        }
        let proof = self.data.prove(pw)?;
        ensure!(
            proof.public_inputs == statement.to_fields(),
            "the proof states another diff than the one expected"
        );
        Ok(proof)
    }

    pub fn verify(&self, proof: ProofWithPublicInputs<F, C, D>) -> anyhow::Result<()> {
        self.data.verify(proof)
    }
}
