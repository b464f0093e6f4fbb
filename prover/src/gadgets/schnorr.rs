//! In-circuit Schnorr verification over ECgFp5 (interface; the gate-based implementation is
//! being written in `gfp5`/`curve`).
//!
//! STUB: `verify_schnorr` currently constrains nothing. It is replaced by the real gadget before
//! the prover issue is closed; the interface below is stable.

use anyhow::Result;
use plonky2::hash::hash_types::HashOutTarget;
use plonky2::iop::target::{BoolTarget, Target};
use plonky2::iop::witness::PartialWitness;
use plonky2::plonk::circuit_builder::CircuitBuilder;
use state::crypto::schnorr::Signature;

use crate::{D, F};

/// The encoding `w = 4` of the generator: a valid key to feed [`verify_schnorr`] when it is
/// disabled (the key-decoding constraints hold for every valid key, enabled or not).
pub const DUMMY_KEY_W: [u64; 5] = [4, 0, 0, 0, 0];

/// The witness targets of one signature check.
#[derive(Clone, Debug)]
pub struct SchnorrTargets {
    pub e: HashOutTarget,
}

/// Constrains: if `enabled`, a signature (e, s) on `msg` verifies under the key whose encoding
/// is `pk`. `pk` must always be the encoding of a valid key (use [`DUMMY_KEY_W`] when disabled).
pub fn verify_schnorr(
    b: &mut CircuitBuilder<F, D>,
    _pk: [Target; 5],
    _msg: HashOutTarget,
    _enabled: BoolTarget,
) -> SchnorrTargets {
    SchnorrTargets {
        e: b.add_virtual_hash(),
    }
}

impl SchnorrTargets {
    /// Fills the signature witness; `None` for a disabled check (a dummy signature is used).
    pub fn set(&self, pw: &mut PartialWitness<F>, sig: Option<&Signature>) -> Result<()> {
        use plonky2::iop::witness::WitnessWrite;
        let e = sig.map(|s| s.challenge()).unwrap_or(state::hash::Digest::ZERO);
        for (t, v) in self.e.elements.iter().zip(e.elements()) {
            pw.set_target(*t, v)?;
        }
        Ok(())
    }
}
