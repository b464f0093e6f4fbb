//! The grouped diff circuit (SPEC 13.7.1): proving one chunk of a version 4 diff whose every
//! slot is a payer with `subs` settled streams (the batch of issue 14's workload: streams that
//! tick and settle, one net record per stream).
//!
//! `cargo bench -p rollup-prover --bench grouped_diff` (set `GROUPED_SHAPES=4x2,8x2,4x2a,4x2s`
//! for `cap x subs`, `a` for the shape with passport and lanes parts, `s` for the one with
//! shares runs). Prints each circuit's degree; criterion reports the proving time of one full
//! chunk, verification excluded.
//!
//! `GROUPED_SHARES=1024` (optionally `GROUPED_SHARES_SHAPE=13x1`, the devnet's chunk for
//! leaves of 6) also benches a registration of that many shares (SPEC 19.6 "Diff"): the
//! number of chunks its record takes, and the proving time of one of them (every chunk of the
//! record is full of runs).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use plonky2::field::types::Field;
use rand::SeedableRng;
use rollup_prover::circuits::diff_grouped::{grouped_chunks, GroupedDiffCircuit, GroupedParts};
use rollup_prover::F;
use state::account::{Account, AccountIndex, Amount, Nonce, Timestamp};
use state::crypto::schnorr::SecretKey;
use state::diff::{AccountRecord, AccountTree, SharesRecord, StateDiff, StreamRecord};
use state::split::Shares;
use state::stream::{Stream, StreamId, StreamSlot, TickCount};

/// `<cap>x<subs>` with `a` (agent parts) or `s` (shares runs) appended for those shapes.
fn shapes() -> Vec<(usize, usize, GroupedParts)> {
    std::env::var("GROUPED_SHAPES")
        .unwrap_or_else(|_| "4x2,8x2,4x2a,4x2s".into())
        .split(',')
        .filter_map(|s| {
            let s = s.trim();
            let (s, parts) = match (s.strip_suffix('a'), s.strip_suffix('s')) {
                (Some(rest), _) => (rest, GroupedParts::Agents),
                (_, Some(rest)) => (rest, GroupedParts::Shares),
                _ => (s, GroupedParts::Streams),
            };
            let (c, k) = s.split_once('x')?;
            Some((c.parse().ok()?, k.parse().ok()?, parts))
        })
        .collect()
}

fn stream(payer: u32, slot: u16, settled: u32) -> Stream {
    Stream {
        id: StreamId {
            payer: AccountIndex(payer),
            slot: StreamSlot(slot),
            opened_at: Nonce::new(1).expect("nonce"),
        },
        payee: AccountIndex(0),
        price: Amount::new(10).expect("price"),
        max_ticks: TickCount::new(10_000).expect("ticks"),
        expiry: Timestamp::new(1_700_003_600).expect("time"),
        settled: TickCount::new(settled).expect("settled"),
        head: state::hash::hash_no_pad(&[F::from_canonical_u64(u64::from(settled) + 1)]),
    }
}

/// `cap` payers (accounts 1..=cap) with `subs` open streams each; the diff settles 600 ticks of
/// every one of them.
fn workload(cap: usize, subs: usize) -> (AccountTree, StateDiff) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let accounts: Vec<Account> = (0..=cap)
        .map(|_| {
            let mut a = Account::new(SecretKey::random(&mut rng).public_key());
            a.balance = Amount::new(1_000_000).expect("balance");
            a
        })
        .collect();
    let record = |i: usize, balance: u64| AccountRecord {
        index: AccountIndex(i as u32),
        balance: Amount::new(balance).expect("balance"),
        nonce: Nonce::new(1).expect("nonce"),
        pubkey: None,
    };
    let streams = |settled: u32| -> Vec<StreamRecord> {
        (1..=cap)
            .flat_map(|p| {
                (0..subs).map(move |k| StreamRecord {
                    payer: AccountIndex(p as u32),
                    slot: StreamSlot(k as u16),
                    stream: Some(stream(p as u32, k as u16, settled)),
                })
            })
            .collect()
    };
    let count = accounts.len() as u64;
    let mut before = AccountTree::from_accounts(&accounts);
    let open = StateDiff::with_streams(
        count,
        (1..=cap).map(|i| record(i, 900_000)).collect(),
        streams(0),
    )
    .expect("the opening diff");
    before.apply(&open).expect("applies");
    let settle = StateDiff::with_streams(
        count,
        (1..=cap).map(|i| record(i, 900_000)).collect(),
        streams(600),
    )
    .expect("the settling diff");
    (before, settle)
}

fn grouped_diff(c: &mut Criterion) {
    let mut group = c.benchmark_group("grouped_diff_prove");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (cap, subs, parts) in shapes() {
        let started = Instant::now();
        let circuit = GroupedDiffCircuit::build(cap, subs, parts);
        let degree = circuit.data.common.degree_bits();
        let suffix = match parts {
            GroupedParts::Streams => "",
            GroupedParts::Agents => "a",
            GroupedParts::Shares => "s",
        };
        let name = format!("{cap}x{subs}{suffix}");
        println!(
            "grouped_diff/{name}: degree 2^{degree} ({} stream records per chunk), built in {:.1} s",
            cap * subs,
            started.elapsed().as_secs_f64()
        );
        let (before, diff) = workload(cap, subs);
        let chunks = grouped_chunks(&before, &diff, cap, subs, parts, 1).expect("chunks");
        assert_eq!(chunks.len(), 1, "one full chunk");
        let (w, s) = &chunks[0];
        let proof = circuit.prove(w, s).expect("an honest chunk proves");
        circuit.data.verify(proof).expect("and verifies");
        group.bench_with_input(BenchmarkId::from_parameter(&name), &(w, s), |b, (w, s)| {
            b.iter(|| circuit.prove(w, s).expect("proves"))
        });
    }
    group.finish();
}

/// Account 0 registers `n` shares to accounts 1..=n (basis points as even as they go).
fn shares_workload(n: u32) -> (AccountTree, StateDiff) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let accounts: Vec<Account> = (0..=n)
        .map(|_| Account::new(SecretKey::random(&mut rng).public_key()))
        .collect();
    let each = 10_000 / n as u16;
    let parts = (1..=n)
        .map(|p| {
            let bps = if p == n {
                10_000 - each * (n as u16 - 1)
            } else {
                each
            };
            (AccountIndex(p), bps)
        })
        .collect();
    let shares = Shares::new(AccountIndex(0), parts).expect("valid shares");
    let record = AccountRecord {
        index: AccountIndex(0),
        balance: Amount::ZERO,
        nonce: Nonce::new(1).expect("nonce"),
        pubkey: None,
    };
    let diff = StateDiff::with_streams(u64::from(n) + 1, vec![record], vec![])
        .expect("the diff")
        .with_agents(vec![], vec![], vec![SharesRecord(shares)])
        .expect("with the shares");
    (AccountTree::from_accounts(&accounts), diff)
}

fn shares_record(c: &mut Criterion) {
    let Some(n) = std::env::var("GROUPED_SHARES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    let shape = std::env::var("GROUPED_SHARES_SHAPE").unwrap_or_else(|_| "13x1".into());
    let (cap, subs) = shape
        .split_once('x')
        .and_then(|(c, k)| Some((c.parse().ok()?, k.parse().ok()?)))
        .expect("GROUPED_SHARES_SHAPE is CAPxSUBS");
    let started = Instant::now();
    let circuit = GroupedDiffCircuit::build(cap, subs, GroupedParts::Shares);
    let (before, diff) = shares_workload(n);
    let chunks =
        grouped_chunks(&before, &diff, cap, subs, GroupedParts::Shares, 1).expect("chunks");
    println!(
        "grouped_diff_shares/{n}: {} chunks of {cap}x{subs} (degree 2^{}, padded to a power of \
         two) for {} items in runs of 11, built in {:.1} s",
        chunks.len(),
        circuit.data.common.degree_bits(),
        n + 1,
        started.elapsed().as_secs_f64()
    );
    for (w, s) in &chunks {
        circuit
            .verify(circuit.prove(w, s).expect("every chunk proves"))
            .expect("and verifies");
    }
    let (w, s) = &chunks[1];
    let mut group = c.benchmark_group("grouped_diff_shares_chunk");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function(format!("{n}/{cap}x{subs}"), |b| {
        b.iter(|| circuit.prove(w, s).expect("proves"))
    });
    group.finish();
}

criterion_group!(benches, grouped_diff, shares_record);
criterion_main!(benches);
