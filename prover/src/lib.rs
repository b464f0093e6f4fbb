//! plonky2 circuits, the proving worker and the verifier. Filled by the prover issue.
