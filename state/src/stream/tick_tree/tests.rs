//! Tick trees from both sides: the payer's tree against a plain recomputation, and the
//! receiver's check against forged, short, stale and foreign ticks.

use plonky2::field::types::Field;

use super::*;
use crate::account::{AccountIndex, Nonce};
use crate::stream::chain::{step, TickChain};
use crate::stream::StreamSlot;

fn sid() -> StreamId {
    StreamId {
        payer: AccountIndex(7),
        slot: StreamSlot(2),
        opened_at: Nonce::new(5).unwrap(),
    }
}

fn ticks(v: u32) -> TickCount {
    TickCount::new(v).unwrap()
}

fn seed(n: u64) -> Digest {
    hash_no_pad(&[F::from_canonical_u64(n), F::from_canonical_u64(99)])
}

/// The root by the definition: the `n` leaves padded with `ZERO` to a power of two, that
/// subtree hashed pairwise, then hashed up to level 24 beside empty subtrees.
fn plain_root(id: &StreamId, n: u32, seed: Digest) -> Digest {
    let width = n.next_power_of_two().max(2) as usize;
    let mut level: Vec<Digest> = (1..=width as u32)
        .map(|k| {
            if k <= n {
                leaf(id, k, secret(seed, k))
            } else {
                Digest::ZERO
            }
        })
        .collect();
    let mut depth = 0;
    while level.len() > 1 {
        level = level.chunks(2).map(|p| two_to_one(p[0], p[1])).collect();
        depth += 1;
    }
    let empty = empty_hashes();
    (depth..TICK_TREE_DEPTH).fold(level[0], |node, l| two_to_one(node, empty[l]))
}

#[test]
fn the_root_is_the_definitions_and_every_tick_opens_it() {
    for n in [1u32, 2, 63, 64, 65, 130, 200] {
        let mut tree = TickTree::new(sid(), ticks(n), seed(n.into()));
        let root = tree.root();
        assert_eq!(root, plain_root(&sid(), n, seed(n.into())), "n={n}");
        for k in 1..=n {
            let path = tree.path(k).unwrap();
            let s = secret(seed(n.into()), k);
            assert_eq!(
                root_from_path(&sid(), ticks(k), s, &path),
                Some(root),
                "n={n} k={k}"
            );
            // Another tick's secret, or the same secret at another position, does not open.
            let other = secret(seed(n.into()), k % n + 1);
            if n > 1 {
                assert_ne!(root_from_path(&sid(), ticks(k), other, &path), Some(root));
                assert_ne!(
                    root_from_path(&sid(), ticks(k % n + 1), s, &path),
                    Some(root)
                );
            }
        }
        assert_eq!(tree.path(0), None);
        assert_eq!(tree.path(n + 1), None);
    }
    // Another stream's tree with the same seed is another tree.
    let mut other = sid();
    other.opened_at = Nonce::new(6).unwrap();
    assert_ne!(
        TickTree::new(other, ticks(8), seed(8)).root(),
        TickTree::new(sid(), ticks(8), seed(8)).root()
    );
    assert_eq!(
        root_from_path(&sid(), TickCount::ZERO, seed(1), &[Digest::ZERO; 24]),
        None
    );
}

#[test]
fn ticks_in_order_carry_about_one_sibling_and_every_one_checks() {
    let n = 1000;
    let mut tree = TickTree::new(sid(), ticks(n), seed(1));
    let mut check = TreeTickCheck::new(sid(), ticks(n), TickCount::ZERO, tree.root());
    let mut carried = 0;
    let mut known = None;
    for k in 1..=n {
        let tick = tree.tick(k, known).unwrap();
        carried += tick.siblings.len();
        check
            .check(&tick)
            .unwrap_or_else(|e| panic!("tick {k}: {e}"));
        assert_eq!(check.last(), ticks(k));
        // The path the checker keeps is the tick's full path: what a payee settles with.
        let kept = check.last_tick().unwrap();
        assert_eq!((kept.k, kept.secret), (ticks(k), tick.secret));
        assert_eq!(Some(kept.siblings), tree.path(k).map(|p| p.to_vec()));
        known = Some(k);
    }
    // 24 for the first, then the levels below where consecutive paths meet: under two on average.
    assert!(
        carried < 2 * n as usize + 24,
        "{carried} siblings for {n} ticks"
    );
}

#[test]
fn forged_short_stale_foreign_and_late_ticks_are_refused_and_change_nothing() {
    let n = 300;
    let mut tree = TickTree::new(sid(), ticks(n), seed(2));
    let mut check = TreeTickCheck::new(sid(), ticks(n), TickCount::ZERO, tree.root());
    check.check(&tree.tick(1, None).unwrap()).unwrap();

    // A forged secret, with the honest siblings.
    let mut forged = tree.tick(2, Some(1)).unwrap();
    forged.secret = seed(77);
    assert_eq!(check.check(&forged).unwrap_err().code(), "TICK_MISMATCH");
    // A far tick with the siblings for a receiver that knew tick 99 (this one knows tick 1).
    let short = tree.tick(100, Some(99)).unwrap();
    assert_eq!(
        check.check(&short).unwrap_err().code(),
        "TICK_PATH_TOO_SHORT"
    );
    // A forged sibling below where the path meets tick 1's (level 6, for index 99 against 0);
    // siblings above it are not read (the known path is authenticated already).
    let mut bent = tree.tick(100, None).unwrap();
    bent.siblings[2] = seed(5);
    assert_eq!(check.check(&bent).unwrap_err().code(), "TICK_MISMATCH");
    assert_eq!(levels_needed(100, Some(1)), 6);
    // Another stream's tick, a replay, a tick past the maximum.
    let mut foreign = tree.tick(2, Some(1)).unwrap();
    foreign.stream.slot = StreamSlot(3);
    assert_eq!(
        check.check(&foreign).unwrap_err().code(),
        "TICK_WRONG_STREAM"
    );
    assert_eq!(
        check
            .check(&tree.tick(1, None).unwrap())
            .unwrap_err()
            .code(),
        "TICK_STALE"
    );
    let mut beyond = tree.tick(n, None).unwrap();
    beyond.k = ticks(n + 1);
    assert_eq!(check.check(&beyond).unwrap_err().code(), "TICK_BEYOND_MAX");
    // None of it moved the checker: tick 2 with the siblings for a receiver at tick 1 checks.
    assert_eq!(check.last(), ticks(1));
    check.check(&tree.tick(2, Some(1)).unwrap()).unwrap();
    // A jump with the full path costs no more than 25 hashes and checks (no gap limit).
    check.check(&tree.tick(n, None).unwrap()).unwrap();
    assert_eq!(check.last(), ticks(n));
}

#[test]
fn a_chain_streams_values_stack_into_a_path_to_its_head_but_no_leaf_starts_it() {
    // The payee of a chain stream knows, for every tick it got, a decomposition of the value
    // below it: t_{k-1} = two_to_one([id0, id1, k, TAG_TICK], t_k). Stacked 24 high they make
    // a path from t_24 up to the anchor, with every node on the right...
    let n = 40;
    let mut chain = TickChain::new(sid(), ticks(n), seed(3));
    let [i0, i1] = sid().to_field_elements();
    let tag = F::from_canonical_u32(crate::stream::chain::TAG_TICK);
    let mut path = [Digest::ZERO; TICK_TREE_DEPTH];
    for (l, sibling) in path.iter_mut().enumerate() {
        *sibling = Digest([
            i0,
            i1,
            F::from_canonical_u32((TICK_TREE_DEPTH - l) as u32),
            tag,
        ]);
    }
    let bottom = chain.tick(TICK_TREE_DEPTH as u32).unwrap().value;
    let top = path
        .iter()
        .fold(bottom, |node, sibling| two_to_one(*sibling, node));
    assert_eq!(top, chain.anchor());
    // ... so a leaf equal to t_24 would settle the chain stream as a tree. A leaf is never a
    // chain step's output: its element 3 is TAG_TICK_LEAF, a step's TAG_TICK.
    for k in [1u32, 24, 25, 1 << 24] {
        let x = chain.tick(k.min(n)).unwrap().value;
        assert_ne!(leaf(&sid(), k, x), step(&sid(), k, x), "k={k}");
    }
    let all_right = ticks(1 << 24);
    for secret in [bottom, chain.tick(25).unwrap().value] {
        assert_ne!(root_from_path(&sid(), all_right, secret, &path), Some(top));
    }
}
