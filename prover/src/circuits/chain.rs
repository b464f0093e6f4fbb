//! Chained statements and their 2-to-1 merge: proofs of consecutive chunks of one sequence
//! (the priority entries of a batch, SPEC 13.8 and 13.11) combined into one proof with the same
//! public-input layout, so that a tree of merges covers a batch of any size with circuits of a
//! fixed size.
//!
//! A [`ChainLayout`] says which public inputs are a running value's state before the chunk
//! (`input`) and after it (`output`), and which are shared by every chunk (a parameter such as
//! a domain). A merge of `left` then `right`:
//!
//! - requires `left.output == right.input` for every link and `left == right` on every shared
//!   range (so the chunks are adjacent and agree on their parameters);
//! - states `left.input` as its input, `right.output` as its output, and the shared values.
//!
//! A layout may also name a `derived` range: values the merge computes from both halves (the
//! payout tree's node over both chunks, SPEC 13.9), given to [`ChainMerge::build_with`] as a
//! function. Every public input must be in exactly one link, shared range or the derived range,
//! so nothing passes a merge unconstrained. The merge circuit verifies both proofs against one inner circuit's verifier
//! data, a constant of the circuit: level `l` merges accept only proofs of level `l - 1`.
//!
//! A layout may let an **empty right half** stand anywhere ([`EmptyRight`], the payout tree's
//! idle chunks, SPEC 13.12): when the right proof adds no entry (its count link's input equals
//! its output), the links and shared ranges are not checked and the merge states the left
//! half's values, plus what the right half adds to positions and counts (its width, nothing)
//! and the right half's own end state where the layout says so. So one proof of an empty chunk
//! (and one of each level of merges over them) serves every position of every batch: the
//! workers prove it once and reuse it. Sound only where an empty half cannot change what the
//! tree commits (the payout tree: an unused slot's leaf is zero wherever it stands, and after
//! an unused slot no slot is used).
//!
//! Cost: two recursive verifications (standard recursion config) and one copy constraint per
//! linked element (with an empty right half allowed, one equality test and two arithmetic
//! operations per linked element instead).

use std::ops::Range;

use anyhow::{ensure, Context};
use plonky2::iop::target::Target;
use plonky2::iop::witness::PartialWitness;
use plonky2::iop::witness::WitnessWrite;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use plonky2::plonk::circuit_data::{CircuitConfig, CircuitData};
use plonky2::plonk::proof::{ProofWithPublicInputs, ProofWithPublicInputsTarget};

use crate::cache::{circuit_digest_hex, CircuitCache, CircuitSpec};
use crate::{C, D, F};

/// A running value: its state before a chunk at `input`, after it at `output`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub input: Range<usize>,
    pub output: Range<usize>,
}

impl Link {
    /// `width` public inputs at `input` and at `output`.
    pub fn new(input: usize, output: usize, width: usize) -> Link {
        Link {
            input: input..input + width,
            output: output..output + width,
        }
    }
}

/// How a merge treats a right half that adds no entry (module docs). Link numbers index
/// [`ChainLayout::links`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmptyRight {
    /// The link that counts entries (one element): the right half is empty when its input
    /// equals its output.
    pub count: usize,
    /// Links whose merged output is `left.output + right.output - right.input` (a position or
    /// a count: what the right half adds, its width or nothing), one element each.
    pub added: Vec<usize>,
    /// Links whose merged output is the right half's even when it is empty (a state its own
    /// slots decide).
    pub from_right: Vec<usize>,
}

/// The public-input layout of a chained statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainLayout {
    pub len: usize,
    pub links: Vec<Link>,
    /// Values every chunk states alike.
    pub shared: Vec<Range<usize>>,
    /// Values a merge computes from both halves (empty for most layouts).
    pub derived: Range<usize>,
    /// Whether, and how, an empty right half may stand anywhere (`None`: every merge checks
    /// every link).
    pub empty_right: Option<EmptyRight>,
}

/// Computes a merge's derived public inputs from the left and the right proof's public inputs.
pub type Derive = dyn Fn(&mut CircuitBuilder<F, D>, &[Target], &[Target]) -> Vec<Target> + Sync;

/// The [`Derive`] of a layout without derived values.
pub fn no_derived(_: &mut CircuitBuilder<F, D>, _: &[Target], _: &[Target]) -> Vec<Target> {
    Vec::new()
}

/// What a public input is in a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The state before the chunk of a link.
    Input,
    /// The state after the chunk of a link.
    Output,
    Shared,
    Derived,
}

impl ChainLayout {
    /// The role of every public input; panics on a layout that misses or repeats one (a
    /// programming error, caught by the first build).
    fn roles(&self) -> Vec<Role> {
        let mut roles: Vec<Option<Role>> = vec![None; self.len];
        let mut set = |at: usize, role: Role| {
            assert!(at < self.len, "layout position {at} is out of range");
            assert!(roles[at].is_none(), "layout position {at} is used twice");
            roles[at] = Some(role);
        };
        for l in &self.links {
            assert_eq!(l.input.len(), l.output.len(), "a link has equal widths");
            for at in l.input.clone() {
                set(at, Role::Input);
            }
            for at in l.output.clone() {
                set(at, Role::Output);
            }
        }
        for r in &self.shared {
            for at in r.clone() {
                set(at, Role::Shared);
            }
        }
        for at in self.derived.clone() {
            set(at, Role::Derived);
        }
        roles
            .into_iter()
            .enumerate()
            .map(|(at, r)| r.unwrap_or_else(|| panic!("layout position {at} has no role")))
            .collect()
    }

    /// Checks natively what a merge requires of `left` then `right`.
    pub fn check_adjacent(&self, left: &[F], right: &[F]) -> anyhow::Result<()> {
        ensure!(
            left.len() == self.len && right.len() == self.len,
            "statements of {} and {} public inputs for a layout of {}",
            left.len(),
            right.len(),
            self.len
        );
        if self.right_is_empty(right) {
            return Ok(());
        }
        for (k, l) in self.links.iter().enumerate() {
            ensure!(
                left[l.output.clone()] == right[l.input.clone()],
                "the chunks are not adjacent: link {k} (public inputs {:?}) differs",
                l.input
            );
        }
        for r in &self.shared {
            ensure!(
                left[r.clone()] == right[r.clone()],
                "the chunks disagree on shared public inputs {r:?}"
            );
        }
        Ok(())
    }

    /// Whether `right` adds no entry under [`ChainLayout::empty_right`] (never without it).
    pub fn right_is_empty(&self, right: &[F]) -> bool {
        self.empty_right.as_ref().is_some_and(|e| {
            let l = &self.links[e.count];
            right[l.input.start] == right[l.output.start]
        })
    }

    /// The statement of the merge of `left` then `right`, with `derived` in the derived range.
    pub fn merged(&self, left: &[F], right: &[F], derived: &[F]) -> Vec<F> {
        assert_eq!(derived.len(), self.derived.len());
        let mut out: Vec<F> = self
            .roles()
            .iter()
            .enumerate()
            .map(|(at, role)| match role {
                Role::Input | Role::Shared => left[at],
                Role::Output => right[at],
                Role::Derived => derived[at - self.derived.start],
            })
            .collect();
        if let Some(e) = &self.empty_right {
            let empty = self.right_is_empty(right);
            for (k, l) in self.links.iter().enumerate() {
                for (o, i) in l.output.clone().zip(l.input.clone()) {
                    out[o] = if e.added.contains(&k) {
                        left[o] + right[o] - right[i]
                    } else if e.from_right.contains(&k) || !empty {
                        right[o]
                    } else {
                        left[o]
                    };
                }
            }
        }
        out
    }

    /// A short name of the merge's kind for cache keys: a layout with
    /// [`ChainLayout::empty_right`] makes other merge circuits than the same links without it.
    pub fn merge_kind(&self) -> &'static str {
        if self.empty_right.is_some() {
            "/empty-right"
        } else {
            ""
        }
    }
}

/// A 2-to-1 merge over one inner circuit.
pub struct ChainMerge {
    pub data: CircuitData<F, C, D>,
    pub layout: ChainLayout,
    left: ProofWithPublicInputsTarget<D>,
    right: ProofWithPublicInputsTarget<D>,
}

impl ChainMerge {
    /// The merge of two proofs of `inner` (a chunk circuit or a merge of the level below),
    /// whose public inputs have `layout` (without derived values).
    pub fn build(inner: &CircuitData<F, C, D>, layout: ChainLayout) -> ChainMerge {
        assert!(layout.derived.is_empty(), "this layout needs build_with");
        Self::build_with(inner, layout, &|_, _, _| Vec::new())
    }

    /// [`ChainMerge::build`] for a layout with derived values, which `derive` computes.
    pub fn build_with(
        inner: &CircuitData<F, C, D>,
        layout: ChainLayout,
        derive: &Derive,
    ) -> ChainMerge {
        Self::build_or_load(
            inner,
            layout,
            derive,
            &CircuitCache::disabled(),
            "merge",
            "",
        )
        .expect("an uncached, unpinned build cannot be refused")
    }

    /// [`ChainMerge::build_with`] through `cache`: `name` for the file, `key` naming the
    /// definition (the caller's version and the layout's kind; the inner circuit's digest is
    /// appended here, which pins every level below).
    pub fn build_or_load(
        inner: &CircuitData<F, C, D>,
        layout: ChainLayout,
        derive: &Derive,
        cache: &CircuitCache,
        name: &str,
        key: &str,
    ) -> anyhow::Result<ChainMerge> {
        let (b, left, right) = Self::construct(inner, &layout, derive);
        let key = format!(
            "{key}{}/inner={}/config=standard_recursion",
            layout.merge_kind(),
            circuit_digest_hex(inner)
        );
        let spec = CircuitSpec {
            name,
            key: &key,
            num_public_inputs: layout.len,
            pinned: None,
        };
        let (data, _) = cache.load_or_build(&spec, move || Ok(b.build::<C>()))?;
        Ok(ChainMerge {
            data,
            layout,
            left,
            right,
        })
    }

    /// The merge circuit before `build()`: deterministic, so a cached circuit's targets are
    /// recovered by running it again.
    fn construct(
        inner: &CircuitData<F, C, D>,
        layout: &ChainLayout,
        derive: &Derive,
    ) -> (
        CircuitBuilder<F, D>,
        ProofWithPublicInputsTarget<D>,
        ProofWithPublicInputsTarget<D>,
    ) {
        assert_eq!(inner.common.num_public_inputs, layout.len);
        let roles = layout.roles();
        let mut b = CircuitBuilder::<F, D>::new(CircuitConfig::standard_recursion_config());
        let vd = b.constant_verifier_data(&inner.verifier_only);
        let left = b.add_virtual_proof_with_pis(&inner.common);
        let right = b.add_virtual_proof_with_pis(&inner.common);
        b.verify_proof::<C>(&left, &vd, &inner.common);
        b.verify_proof::<C>(&right, &vd, &inner.common);
        let (l, r) = (&left.public_inputs, &right.public_inputs);
        // Without `empty_right`, every link and shared value is one copy constraint; with it,
        // each is `(left - right) x not_empty = 0` (module docs).
        let not_empty = layout.empty_right.as_ref().map(|e| {
            let c = &layout.links[e.count];
            let empty = b.is_equal(r[c.input.start], r[c.output.start]);
            b.not(empty)
        });
        let same = |b: &mut CircuitBuilder<F, D>, x: Target, y: Target| match not_empty {
            None => b.connect(x, y),
            Some(n) => {
                let d = b.sub(x, y);
                let t = b.mul(n.target, d);
                b.assert_zero(t);
            }
        };
        for link in &layout.links {
            for (o, i) in link.output.clone().zip(link.input.clone()) {
                same(&mut b, l[o], r[i]);
            }
        }
        for range in &layout.shared {
            for at in range.clone() {
                same(&mut b, l[at], r[at]);
            }
        }
        let derived = derive(&mut b, l, r);
        assert_eq!(derived.len(), layout.derived.len());
        let mut merged: Vec<Target> = roles
            .iter()
            .enumerate()
            .map(|(at, role)| match role {
                Role::Input | Role::Shared => l[at],
                Role::Output => r[at],
                Role::Derived => derived[at - layout.derived.start],
            })
            .collect();
        if let (Some(e), Some(n)) = (&layout.empty_right, not_empty) {
            for (k, link) in layout.links.iter().enumerate() {
                for (o, i) in link.output.clone().zip(link.input.clone()) {
                    merged[o] = if e.added.contains(&k) {
                        let width = b.sub(r[o], r[i]);
                        b.add(l[o], width)
                    } else if e.from_right.contains(&k) {
                        r[o]
                    } else {
                        b.select(n, r[o], l[o])
                    };
                }
            }
        }
        b.register_public_inputs(&merged);
        (b, left, right)
    }

    /// Proves the merge of two adjacent proofs (`left` first), after checking natively that
    /// they are adjacent.
    pub fn prove(
        &self,
        left: &ProofWithPublicInputs<F, C, D>,
        right: &ProofWithPublicInputs<F, C, D>,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        self.layout
            .check_adjacent(&left.public_inputs, &right.public_inputs)?;
        self.prove_unchecked(left, right)
    }

    /// Proves without the native check: the circuit alone decides.
    pub fn prove_unchecked(
        &self,
        left: &ProofWithPublicInputs<F, C, D>,
        right: &ProofWithPublicInputs<F, C, D>,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        let mut pw = PartialWitness::new();
        pw.set_proof_with_pis_target(&self.left, left)?;
        pw.set_proof_with_pis_target(&self.right, right)?;
        self.data.prove(pw).context("the merge circuit refused")
    }
}

/// Asserts that `left` then `right` do not merge: the native check refuses them and so does
/// the merge circuit when proving without it.
#[cfg(test)]
pub(crate) fn assert_not_mergeable(
    merge: &ChainMerge,
    name: &str,
    left: &ProofWithPublicInputs<F, C, D>,
    right: &ProofWithPublicInputs<F, C, D>,
) {
    assert!(
        merge
            .layout
            .check_adjacent(&left.public_inputs, &right.public_inputs)
            .is_err(),
        "{name}: natively adjacent"
    );
    assert!(
        merge.prove_unchecked(left, right).is_err(),
        "{name}: the merge circuit accepted it"
    );
}

/// The merges of a tree over `2^levels` chunk proofs of `chunk`: `merges[l - 1]` merges level
/// `l - 1` proofs.
pub struct ChainTree {
    pub merges: Vec<ChainMerge>,
}

impl ChainTree {
    pub fn build(chunk: &CircuitData<F, C, D>, layout: &ChainLayout, levels: usize) -> ChainTree {
        Self::build_with(chunk, layout, levels, &no_derived)
    }

    /// [`ChainTree::build`] for a layout with derived values.
    pub fn build_with(
        chunk: &CircuitData<F, C, D>,
        layout: &ChainLayout,
        levels: usize,
        derive: &Derive,
    ) -> ChainTree {
        let mut merges: Vec<ChainMerge> = Vec::with_capacity(levels);
        for _ in 0..levels {
            let inner = merges.last().map_or(chunk, |m| &m.data);
            let m = ChainMerge::build_with(inner, layout.clone(), derive);
            merges.push(m);
        }
        ChainTree { merges }
    }

    /// The circuit of the root proof: the top merge, or the chunk circuit for one chunk.
    pub fn root_circuit<'a>(&'a self, chunk: &'a CircuitData<F, C, D>) -> &'a CircuitData<F, C, D> {
        self.merges.last().map_or(chunk, |m| &m.data)
    }

    /// Merges `proofs` (a power of two of them, at most `2^levels`, in order) into one.
    pub fn prove(
        &self,
        mut proofs: Vec<ProofWithPublicInputs<F, C, D>>,
    ) -> anyhow::Result<ProofWithPublicInputs<F, C, D>> {
        ensure!(
            proofs.len().is_power_of_two(),
            "{} chunk proofs: not a power of two",
            proofs.len()
        );
        let levels = proofs.len().trailing_zeros() as usize;
        ensure!(
            levels <= self.merges.len(),
            "{} chunk proofs for a tree of {} levels",
            proofs.len(),
            self.merges.len()
        );
        for merge in &self.merges[..levels] {
            proofs = proofs
                .chunks(2)
                .map(|pair| merge.prove(&pair[0], &pair[1]))
                .collect::<anyhow::Result<_>>()?;
        }
        proofs.pop().context("no proof")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plonky2::field::types::Field;

    fn layout() -> ChainLayout {
        ChainLayout {
            len: 5,
            links: vec![Link::new(0, 1, 1), Link::new(2, 3, 1)],
            shared: vec![Range { start: 4, end: 5 }],
            derived: 0..0,
            empty_right: None,
        }
    }

    #[test]
    fn merged_statement_takes_inputs_left_and_outputs_right() {
        let f = F::from_canonical_u64;
        let l = [f(1), f(2), f(10), f(20), f(7)];
        let r = [f(2), f(3), f(20), f(30), f(7)];
        layout().check_adjacent(&l, &r).unwrap();
        assert_eq!(
            layout().merged(&l, &r, &[]),
            vec![f(1), f(3), f(10), f(30), f(7)]
        );
        let gap = [f(3), f(4), f(20), f(30), f(7)];
        assert!(layout().check_adjacent(&l, &gap).is_err());
        let other = [f(2), f(3), f(20), f(30), f(8)];
        assert!(layout().check_adjacent(&l, &other).is_err());
    }

    #[test]
    #[should_panic(expected = "has no role")]
    fn a_layout_must_cover_every_public_input() {
        ChainLayout {
            len: 3,
            links: vec![Link::new(0, 1, 1)],
            shared: vec![],
            derived: 0..0,
            empty_right: None,
        }
        .roles();
    }
}
