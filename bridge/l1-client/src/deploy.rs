//! Deployment of the contracts from the committed artifacts, and deposits.

use alloy_primitives::{Address, Bytes, B256};
use alloy_sol_types::{SolCall, SolEvent, SolValue};

use crate::contracts::{self, Rollup, TestStablecoin};
use crate::rpc::{Receipt, Rpc, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("deploying {0}: the receipt has no contract address")]
    NoContractAddress(&'static str),
    #[error("the receipt has no {0} event")]
    MissingEvent(&'static str),
    #[error("decoding: {0}")]
    Abi(#[from] alloy_sol_types::Error),
}

/// Who runs a deployment and how it starts.
#[derive(Clone, Debug)]
pub struct DeployConfig {
    /// Sends the deployment transactions; also the stablecoin's minter on devnet.
    pub deployer: Address,
    pub admin: Address,
    pub operator: Address,
    pub guardian: Address,
    /// The key whose signature finalizes batches (stage 0, `AttestationVerifier`).
    pub attester: Address,
    /// State root of the L2 genesis (`Digest::to_bytes`).
    pub genesis_root: B256,
    /// Seconds the sequencer has to consume a priority op.
    pub priority_deadline_period: u64,
}

impl DeployConfig {
    /// Every role on one account (a devnet), except the attester: anvil's dev account 2
    /// ([`crate::signer::ANVIL_DEV_KEY_2`]), so that the operator's key alone cannot finalize.
    pub fn devnet(account: Address, genesis_root: B256) -> DeployConfig {
        DeployConfig {
            deployer: account,
            admin: account,
            operator: account,
            guardian: account,
            attester: crate::signer::L1Signer::from_hex(crate::signer::ANVIL_DEV_KEY_2)
                .map(|s| s.address())
                .unwrap_or(account),
            genesis_root,
            priority_deadline_period: 3 * 24 * 3600,
        }
    }
}

/// Addresses of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub token: Address,
    pub verifier: Address,
    pub rollup: Address,
    /// The Poseidon permutation the exodus checks call (pinned by code hash).
    pub permutation: Address,
}

/// Deploys the Poseidon permutation the exodus checks call (`Rollup` takes its address; its
/// code is pinned by hash, so any correct deployment will do and one serves many rollups).
pub async fn deploy_permutation(rpc: &Rpc, from: Address) -> Result<Address, BridgeError> {
    create(rpc, from, contracts::POSEIDON_PERMUTATION, Vec::new()).await
}

async fn create(
    rpc: &Rpc,
    from: Address,
    artifact: contracts::Artifact,
    args: Vec<u8>,
) -> Result<Address, BridgeError> {
    let mut code = artifact.bytecode().to_vec();
    code.extend_from_slice(&args);
    let receipt = rpc.send(from, None, code.into()).await?;
    receipt
        .contract_address
        .ok_or(BridgeError::NoContractAddress(artifact.name))
}

/// Deploys the devnet: `TestStablecoin` (minter = deployer), `AttestationVerifier`,
/// `PoseidonPermutation` and `Rollup`.
pub async fn deploy_devnet(rpc: &Rpc, cfg: &DeployConfig) -> Result<Deployment, BridgeError> {
    let token = create(
        rpc,
        cfg.deployer,
        contracts::TEST_STABLECOIN,
        cfg.deployer.abi_encode(),
    )
    .await?;
    let verifier = create(
        rpc,
        cfg.deployer,
        contracts::ATTESTATION_VERIFIER,
        cfg.attester.abi_encode(),
    )
    .await?;
    let permutation = deploy_permutation(rpc, cfg.deployer).await?;
    let args = (
        token,
        verifier,
        cfg.admin,
        cfg.operator,
        cfg.guardian,
        cfg.genesis_root,
        cfg.priority_deadline_period,
        permutation,
    )
        .abi_encode_params();
    let rollup = create(rpc, cfg.deployer, contracts::ROLLUP, args).await?;
    Ok(Deployment {
        token,
        verifier,
        rollup,
        permutation,
    })
}

/// Mints devnet tokens (`from` must be the minter).
pub async fn mint(
    rpc: &Rpc,
    d: &Deployment,
    from: Address,
    to: Address,
    amount: u64,
) -> Result<Receipt, BridgeError> {
    let call = TestStablecoin::mintCall {
        to,
        value: alloy_primitives::U256::from(amount),
    };
    Ok(rpc
        .send(from, Some(d.token), Bytes::from(call.abi_encode()))
        .await?)
}

/// Approves the rollup for `amount` and deposits it to L2 account `recipient`; returns the
/// `Deposit` event.
pub async fn deposit(
    rpc: &Rpc,
    d: &Deployment,
    from: Address,
    recipient: u32,
    amount: u64,
) -> Result<Rollup::Deposit, BridgeError> {
    let approve = TestStablecoin::approveCall {
        spender: d.rollup,
        value: alloy_primitives::U256::from(amount),
    };
    rpc.send(from, Some(d.token), approve.abi_encode().into())
        .await?;
    let call = Rollup::depositCall { recipient, amount };
    let receipt = rpc
        .send(from, Some(d.rollup), call.abi_encode().into())
        .await?;
    receipt
        .logs
        .iter()
        .filter(|l| l.address == d.rollup)
        .find_map(|l| Rollup::Deposit::decode_raw_log(l.topics.iter().copied(), &l.data).ok())
        .ok_or(BridgeError::MissingEvent("Deposit"))
}
