//! Deploys the committed artifacts on a real anvil and makes a deposit.
//! Needs the L1 toolchain: scripts/ensure-l1-tools.sh (scripts/test.sh runs it).

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use devkit::anvil::Anvil;
use rollup_bridge::contracts::{self, Rollup};
use rollup_bridge::deploy::{self, DeployConfig};
use rollup_bridge::hashes::{deposit_entry, next_priority_hash, payout_leaf, Payout};
use rollup_bridge::rpc::Rpc;

async fn view<C: SolCall>(rpc: &Rpc, to: Address, call: C) -> C::Return {
    let out = rpc
        .call(to, Bytes::from(call.abi_encode()))
        .await
        .expect("eth_call");
    C::abi_decode_returns(&out).expect("decode")
}

#[tokio::test]
async fn deploy_and_deposit() {
    let anvil = Anvil::start(&[]).expect("anvil (run scripts/ensure-l1-tools.sh)");
    let rpc = Rpc::new(anvil.endpoint());
    let ready = rpc.wait_ready(std::time::Duration::from_secs(10)).await;
    assert_eq!(ready.unwrap(), 31337);
    let accounts = rpc.accounts().await.unwrap();
    let (operator, alice) = (accounts[0], accounts[1]);
    let genesis = keccak256("genesis");
    let d = deploy::deploy_devnet(&rpc, &DeployConfig::devnet(operator, genesis))
        .await
        .expect("deploy");

    let code: Bytes = rpc
        .request("eth_getCode", serde_json::json!([d.rollup, "latest"]))
        .await
        .unwrap();
    // Same length as the artifact's runtime code (immutables are filled in at deployment).
    assert_eq!(code.len(), contracts::ROLLUP.deployed_bytecode().len());
    let root = view(&rpc, d.rollup, Rollup::committedRootCall {}).await;
    assert_eq!(root, genesis);

    deploy::mint(&rpc, &d, operator, alice, 5_000_000)
        .await
        .unwrap();
    let ev = deploy::deposit(&rpc, &d, alice, 7, 1_500_000)
        .await
        .expect("deposit");
    assert_eq!(ev.serial, 0);
    assert_eq!(ev.depositor, alice);
    assert_eq!(ev.recipient, 7);
    assert_eq!(ev.amount, 1_500_000);
    let expected = next_priority_hash(B256::ZERO, &deposit_entry(0, alice, 7, 1_500_000));
    assert_eq!(ev.priorityHash, expected, "Rust rolling hash = contract's");
    let stored = view(&rpc, d.rollup, Rollup::priorityHashAfterCall(U256::from(1))).await;
    assert_eq!(stored, expected);
    let len = view(&rpc, d.rollup, Rollup::priorityQueueLengthCall {}).await;
    assert_eq!(len, 1);

    // The payout leaf of SPEC 15.5, Rust vs contract.
    let p = Payout {
        from: 3,
        to: alice,
        amount: 42,
    };
    let leaf = view(
        &rpc,
        d.rollup,
        Rollup::payoutLeafCall {
            batchNumber: 5,
            index: 2,
            from: p.from,
            to: p.to,
            amount: p.amount,
        },
    )
    .await;
    assert_eq!(leaf, payout_leaf(5, 2, &p));
}
