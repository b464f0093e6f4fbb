//! A minimal Ethereum JSON-RPC client over HTTP: what deployment and the tests need. Sending
//! uses `eth_sendTransaction`, i.e. accounts the node holds (anvil's unlocked dev accounts);
//! local signing for real networks comes with the batch submitter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, B256, U256};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{method}: node error {code}: {message}")]
    Node {
        method: &'static str,
        code: i64,
        message: String,
        data: Option<Value>,
    },
    #[error("{method}: unexpected answer: {detail}")]
    Decode {
        method: &'static str,
        detail: String,
    },
    #[error("transaction {0} reverted")]
    Reverted(B256, Box<Receipt>),
    #[error("no receipt for {0} after {1:?}")]
    Timeout(B256, Duration),
}

/// Log entry of a receipt.
#[derive(Clone, Debug, Deserialize)]
pub struct Log {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
}

/// The receipt fields we use.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub transaction_hash: B256,
    pub status: U256,
    pub gas_used: U256,
    pub block_number: U256,
    pub contract_address: Option<Address>,
    pub logs: Vec<Log>,
}

pub struct Rpc {
    http: reqwest::Client,
    url: String,
    id: AtomicU64,
    /// How long `send` waits for a receipt.
    pub receipt_timeout: Duration,
}

impl Rpc {
    pub fn new(url: impl Into<String>) -> Rpc {
        Rpc {
            http: reqwest::Client::new(),
            url: url.into(),
            id: AtomicU64::new(1),
            receipt_timeout: Duration::from_secs(60),
        }
    }

    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, RpcError> {
        let id = self.id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if let Some(err) = answer.get("error") {
            return Err(RpcError::Node {
                method,
                code: err["code"].as_i64().unwrap_or(0),
                message: err["message"].as_str().unwrap_or("").to_string(),
                data: err.get("data").cloned(),
            });
        }
        serde_json::from_value(answer["result"].clone()).map_err(|e| RpcError::Decode {
            method,
            detail: e.to_string(),
        })
    }

    pub async fn chain_id(&self) -> Result<u64, RpcError> {
        let id: U256 = self.request("eth_chainId", json!([])).await?;
        Ok(id.to::<u64>())
    }

    /// Accounts the node signs for (anvil: its ten funded dev accounts).
    pub async fn accounts(&self) -> Result<Vec<Address>, RpcError> {
        self.request("eth_accounts", json!([])).await
    }

    /// `eth_call` at the latest block.
    pub async fn call(&self, to: Address, data: Bytes) -> Result<Bytes, RpcError> {
        self.request("eth_call", json!([{"to": to, "data": data}, "latest"]))
            .await
    }

    /// Sends a transaction from an account the node holds (`to = None` creates a contract),
    /// waits for its receipt and fails if it reverted.
    pub async fn send(
        &self,
        from: Address,
        to: Option<Address>,
        data: Bytes,
    ) -> Result<Receipt, RpcError> {
        let mut tx = json!({"from": from, "data": data});
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash: B256 = self.request("eth_sendTransaction", json!([tx])).await?;
        let start = Instant::now();
        loop {
            let receipt: Option<Receipt> = self
                .request("eth_getTransactionReceipt", json!([hash]))
                .await?;
            if let Some(r) = receipt {
                if r.status != U256::from(1) {
                    return Err(RpcError::Reverted(hash, Box::new(r)));
                }
                return Ok(r);
            }
            if start.elapsed() > self.receipt_timeout {
                return Err(RpcError::Timeout(hash, self.receipt_timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
