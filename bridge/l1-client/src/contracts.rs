//! Contract bindings (types, calls, events, errors) generated from the committed artifacts,
//! and their creation bytecode.

// The generated event constructors take one argument per field.
#![allow(clippy::too_many_arguments)]

use alloy_primitives::Bytes;
use alloy_sol_types::sol;

sol!(
    #[allow(missing_docs)]
    #[derive(Debug, PartialEq, Eq)]
    Rollup,
    "../artifacts/Rollup.json"
);
sol!(
    #[allow(missing_docs)]
    #[derive(Debug, PartialEq, Eq)]
    TestStablecoin,
    "../artifacts/TestStablecoin.json"
);
sol!(
    #[allow(missing_docs)]
    #[derive(Debug, PartialEq, Eq)]
    AttestationVerifier,
    "../artifacts/AttestationVerifier.json"
);

/// A compiled contract as committed in `bridge/artifacts/<name>.json`.
#[derive(Clone, Copy, Debug)]
pub struct Artifact {
    pub name: &'static str,
    pub json: &'static str,
}

pub const ROLLUP: Artifact = Artifact {
    name: "Rollup",
    json: include_str!("../../artifacts/Rollup.json"),
};
/// The Poseidon permutation `Rollup`'s exodus checks call (deployed first; its code hash is
/// pinned in `ExodusVerifier`).
pub const POSEIDON_PERMUTATION: Artifact = Artifact {
    name: "PoseidonPermutation",
    json: include_str!("../../artifacts/PoseidonPermutation.json"),
};
pub const TEST_STABLECOIN: Artifact = Artifact {
    name: "TestStablecoin",
    json: include_str!("../../artifacts/TestStablecoin.json"),
};
pub const ATTESTATION_VERIFIER: Artifact = Artifact {
    name: "AttestationVerifier",
    json: include_str!("../../artifacts/AttestationVerifier.json"),
};

impl Artifact {
    fn field(&self, key: &str) -> Bytes {
        let v: serde_json::Value =
            serde_json::from_str(self.json).expect("committed artifact is JSON");
        let hex = v[key].as_str().expect("artifact has bytecode");
        hex.parse().expect("artifact bytecode is hex")
    }

    /// Creation bytecode (append the ABI-encoded constructor arguments to deploy).
    pub fn bytecode(&self) -> Bytes {
        self.field("bytecode")
    }

    /// Runtime bytecode (what `eth_getCode` returns after deployment).
    pub fn deployed_bytecode(&self) -> Bytes {
        self.field("deployedBytecode")
    }
}
