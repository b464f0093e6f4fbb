//! At which level the merges of each chained tree reach one circuit shape (the same common
//! data at every level above): what one settlement circuit for every batch size would rely on
//! (SPEC 13.11, "Still to do": a settlement circuit verifying each root with its verifier data
//! as a witness, checked against the pinned levels' digests).
//!
//! `cargo bench -p rollup-prover --bench merge_shapes` builds the merges of small chunk
//! circuits of the priority, payout, diff and split-credit trees up to level 3 (no proving)
//! and prints, per tree, each level's degree and the first level from which the shape is
//! fixed. A measurement of circuit shapes, not of speed: it prints, and fails only when a tree
//! never settles within the levels built.

use std::time::Instant;

use rollup_prover::circuits::chain::{no_derived, ChainLayout, ChainTree, Derive};
use rollup_prover::circuits::diff::{diff_layout, DiffCircuit};
use rollup_prover::circuits::payout::{derive_merge, payout_layout, PayoutCircuit};
use rollup_prover::circuits::priority::{priority_layout, PriorityCircuit};
use rollup_prover::circuits::split::{split_layout, SplitChainCircuit, LANE_PAYEES};
use rollup_prover::{C, D, F};

const LEVELS: usize = 3;

/// Builds `LEVELS` merges over `chunk`; returns the first level whose common data every level
/// above repeats (`None` if the top two differ).
fn settles(
    name: &str,
    chunk: &plonky2::plonk::circuit_data::CircuitData<F, C, D>,
    layout: &ChainLayout,
    derive: &Derive,
) -> Option<usize> {
    let started = Instant::now();
    let tree = ChainTree::build_with(chunk, layout, LEVELS, derive);
    let commons: Vec<_> = tree.merges.iter().map(|m| &m.data.common).collect();
    let bits: Vec<String> = commons
        .iter()
        .map(|c| format!("2^{}", c.degree_bits()))
        .collect();
    let fixed = (0..LEVELS)
        .find(|&l| commons[l..].iter().all(|c| *c == commons[LEVELS - 1]))
        .filter(|&l| l < LEVELS - 1)
        .map(|l| l + 1);
    println!(
        "{name:>8}: chunk 2^{}, merges by level {} -> fixed from level {} ({:.1} s to build)",
        chunk.common.degree_bits(),
        bits.join(", "),
        fixed.map_or("none within 3".to_string(), |l| l.to_string()),
        started.elapsed().as_secs_f64()
    );
    fixed
}

fn main() {
    let trees = [
        settles(
            "priority",
            &PriorityCircuit::build(2).data,
            &priority_layout(),
            &no_derived,
        ),
        settles(
            "payout",
            &PayoutCircuit::build(2).data,
            &payout_layout(),
            &derive_merge,
        ),
        settles(
            "diff",
            &DiffCircuit::build(1, 1).data,
            &diff_layout(),
            &no_derived,
        ),
        settles(
            "splits",
            &SplitChainCircuit::build(1, LANE_PAYEES).data,
            &split_layout(),
            &no_derived,
        ),
    ];
    assert!(
        trees.iter().all(Option::is_some),
        "a tree's merges do not reach one shape within {LEVELS} levels"
    );
}
