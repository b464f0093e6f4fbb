//! A minimal Ethereum JSON-RPC client over HTTP: what deployment and the tests need. Sending
//! uses `eth_sendTransaction`, i.e. accounts the node holds (anvil's unlocked dev accounts);
//! local signing for real networks comes with the batch submitter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, B256, U256};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long one JSON-RPC request may take, from connecting to the end of the answer, unless
/// the client is built with [`Rpc::with_timeout`]. A provider that accepts the connection and
/// never answers must not stall the watcher or the submitter for good.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Transport failure. The error never carries the endpoint URL (it often holds an API
    /// key): see [`Rpc::request`].
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The endpoint did not answer `method` within the request time-out.
    #[error("{method}: no answer from the L1 endpoint within {after:?}")]
    RequestTimeout {
        method: &'static str,
        after: Duration,
    },
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

/// Log entry of a receipt or of `eth_getLogs` (the position fields are absent for pending logs).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    pub address: Address,
    pub topics: Vec<B256>,
    pub data: Bytes,
    #[serde(default)]
    pub block_number: Option<U256>,
    #[serde(default)]
    pub block_hash: Option<B256>,
    #[serde(default)]
    pub transaction_hash: Option<B256>,
    #[serde(default)]
    pub log_index: Option<U256>,
}

/// The block header fields we use.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockHeader {
    pub number: U256,
    pub hash: B256,
    pub parent_hash: B256,
    pub timestamp: U256,
    #[serde(default)]
    pub base_fee_per_gas: Option<U256>,
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

/// The fields of a mined transaction (`eth_getTransactionByHash`) that we use.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionInfo {
    pub hash: B256,
    pub from: Address,
    /// `None` for a contract creation.
    pub to: Option<Address>,
    pub input: Bytes,
    #[serde(default)]
    pub block_number: Option<U256>,
}

pub struct Rpc {
    http: reqwest::Client,
    url: String,
    id: AtomicU64,
    request_timeout: Duration,
    /// How long `send` waits for a receipt.
    pub receipt_timeout: Duration,
}

/// `scheme://host[:port]` of an endpoint URL, for logs: providers put API keys in the path or
/// the query (and sometimes in user info), none of which may reach a log line.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("", url),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

impl Rpc {
    /// A client with [`DEFAULT_REQUEST_TIMEOUT`] per request.
    pub fn new(url: impl Into<String>) -> Rpc {
        Rpc::with_timeout(url, DEFAULT_REQUEST_TIMEOUT)
    }

    /// A client whose every request fails with [`RpcError::RequestTimeout`] after `timeout`.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Rpc {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_else(|e| {
                // Only a broken TLS/DNS backend makes the builder fail; the outer time-out in
                // `request` still bounds every call.
                tracing::warn!(error = %e.without_url(), "L1 client: default HTTP client");
                reqwest::Client::new()
            });
        Rpc {
            http,
            url: url.into(),
            id: AtomicU64::new(1),
            request_timeout: timeout,
            receipt_timeout: Duration::from_secs(60),
        }
    }

    /// The per-request time-out.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The endpoint as it may be logged (scheme and host only).
    pub fn endpoint_for_logs(&self) -> String {
        redact_url(&self.url)
    }

    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Value,
    ) -> Result<T, RpcError> {
        let id = self.id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let timeout = RpcError::RequestTimeout {
            method,
            after: self.request_timeout,
        };
        // reqwest's errors print the URL: strip it, it may hold the provider's API key.
        let http = |e: reqwest::Error| {
            if e.is_timeout() {
                RpcError::RequestTimeout {
                    method,
                    after: self.request_timeout,
                }
            } else {
                RpcError::Http(e.without_url())
            }
        };
        let exchange = async {
            self.http
                .post(&self.url)
                .json(&body)
                .send()
                .await
                .map_err(http)?
                .json::<Value>()
                .await
                .map_err(http)
        };
        // The client's own time-out covers connect, send and the body; this outer bound is the
        // guarantee (also for a client built without one).
        let answer = tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| timeout)??;
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

    /// Retries `eth_chainId` until the endpoint answers (a freshly started anvil may accept
    /// connections a moment before it serves requests), for up to `patience`.
    pub async fn wait_ready(&self, patience: Duration) -> Result<u64, RpcError> {
        let start = Instant::now();
        loop {
            match self.chain_id().await {
                Ok(id) => return Ok(id),
                Err(e) if start.elapsed() >= patience => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
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

    /// Number of the newest block.
    pub async fn block_number(&self) -> Result<u64, RpcError> {
        let n: U256 = self.request("eth_blockNumber", json!([])).await?;
        Ok(n.to::<u64>())
    }

    /// Header of the canonical block `number` (`None` beyond the head).
    pub async fn block(&self, number: u64) -> Result<Option<BlockHeader>, RpcError> {
        self.request(
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), false]),
        )
        .await
    }

    /// Logs of `address` in blocks `from..=to` whose first topic is one of `topic0`.
    pub async fn logs(
        &self,
        address: Address,
        topic0: &[B256],
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>, RpcError> {
        self.request(
            "eth_getLogs",
            json!([{
                "address": address,
                "fromBlock": format!("0x{from:x}"),
                "toBlock": format!("0x{to:x}"),
                "topics": [topic0],
            }]),
        )
        .await
    }

    /// Receipt of a mined transaction (`None` while pending or unknown).
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>, RpcError> {
        self.request("eth_getTransactionReceipt", json!([hash]))
            .await
    }

    /// A transaction by hash, with its calldata (`None` if the node does not know it).
    pub async fn transaction(&self, hash: B256) -> Result<Option<TransactionInfo>, RpcError> {
        self.request("eth_getTransactionByHash", json!([hash]))
            .await
    }

    /// Nonce of `address` counting pending (`"pending"`) or only mined (`"latest"`) transactions.
    pub async fn nonce(&self, address: Address, tag: &str) -> Result<u64, RpcError> {
        let n: U256 = self
            .request("eth_getTransactionCount", json!([address, tag]))
            .await?;
        Ok(n.to::<u64>())
    }

    pub async fn gas_price(&self) -> Result<u128, RpcError> {
        let n: U256 = self.request("eth_gasPrice", json!([])).await?;
        Ok(n.to::<u128>())
    }

    /// `eth_call` of a contract view: `call` ABI-encoded to `to`, its return value decoded (an
    /// answer that does not decode is `Decode`, naming the view).
    pub async fn view<C: alloy_sol_types::SolCall>(
        &self,
        to: Address,
        call: &C,
    ) -> Result<C::Return, RpcError> {
        let out = self.call(to, call.abi_encode().into()).await?;
        C::abi_decode_returns(&out).map_err(|e| RpcError::Decode {
            method: C::SIGNATURE,
            detail: e.to_string(),
        })
    }

    /// Gas estimate of a call from `from` (reverts surface as node errors).
    pub async fn estimate_gas(
        &self,
        from: Address,
        to: Address,
        data: &Bytes,
    ) -> Result<u64, RpcError> {
        self.estimate_gas_with_value(from, to, data, U256::ZERO)
            .await
    }

    /// Gas estimate of a call that sends `value` wei.
    pub async fn estimate_gas_with_value(
        &self,
        from: Address,
        to: Address,
        data: &Bytes,
        value: U256,
    ) -> Result<u64, RpcError> {
        let n: U256 = self
            .request(
                "eth_estimateGas",
                json!([{"from": from, "to": to, "data": data, "value": value}]),
            )
            .await?;
        Ok(n.to::<u64>())
    }

    /// Broadcasts a signed transaction; returns its hash.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, RpcError> {
        self.request(
            "eth_sendRawTransaction",
            json!([format!("0x{}", hex::encode(raw))]),
        )
        .await
    }

    /// Signs a transaction locally (legacy EIP-155, pending nonce, node gas price), broadcasts it,
    /// waits for its receipt and fails if it reverted.
    pub async fn send_signed(
        &self,
        signer: &crate::signer::L1Signer,
        to: Address,
        data: Bytes,
    ) -> Result<Receipt, RpcError> {
        self.send_signed_with_value(signer, to, data, U256::ZERO)
            .await
    }

    /// [`Rpc::send_signed`] sending `value` wei along (a forced withdrawal's fee).
    pub async fn send_signed_with_value(
        &self,
        signer: &crate::signer::L1Signer,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> Result<Receipt, RpcError> {
        let chain_id = self.chain_id().await?;
        let nonce = self.nonce(signer.address(), "pending").await?;
        let gas = self
            .estimate_gas_with_value(signer.address(), to, &data, value)
            .await?;
        let gas_price = self.gas_price().await?;
        let tx = crate::signer::LegacyTx {
            chain_id,
            nonce,
            gas_price,
            gas: gas + gas / 4 + 10_000,
            to,
            value,
            data,
        };
        let (raw, _) = signer.sign_legacy(&tx).map_err(|e| RpcError::Decode {
            method: "sign",
            detail: e.to_string(),
        })?;
        let hash = self.send_raw(&raw).await?;
        self.wait_receipt(hash).await
    }

    /// Waits for the receipt of `hash` (up to `receipt_timeout`) and fails if it reverted.
    pub async fn wait_receipt(&self, hash: B256) -> Result<Receipt, RpcError> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.receipt(hash).await? {
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
        self.wait_receipt(hash).await
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_are_redacted_to_scheme_and_host() {
        assert_eq!(
            redact_url("https://eth-mainnet.example.com/v2/SECRETKEY"),
            "https://eth-mainnet.example.com"
        );
        assert_eq!(
            redact_url("https://user:pass@rpc.example.com:8545/?key=SECRET"),
            "https://rpc.example.com:8545"
        );
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(redact_url("localhost:8545/x"), "localhost:8545");
    }
}
