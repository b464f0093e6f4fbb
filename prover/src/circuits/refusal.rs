//! Naming the rule a refused witness broke. A circuit that wants its refusals named keeps, for
//! each rule, the target that is asserted zero (a gate's own output, so that a broken rule
//! conflicts on it); plonky2's witness-generation error names the wire whose computed value
//! conflicts with the one required, and [`rule_broken`] maps it back. Diagnostics for logs and
//! attack tests; soundness never depends on it.

use plonky2::iop::target::Target;
use plonky2::iop::wire::Wire;

/// The rule whose target is the wire named in `error`, if any.
pub(crate) fn rule_broken<R: Copy>(rules: &[(Target, R)], error: &str) -> Option<R> {
    let wire = conflicting_wire(error)?;
    rules
        .iter()
        .find(|(t, _)| *t == Target::Wire(wire))
        .map(|(_, r)| *r)
}

/// The wire named by plonky2's witness-generation conflict
/// (`Partition containing Wire(Wire { row: R, column: C }) was set twice ...`).
fn conflicting_wire(message: &str) -> Option<Wire> {
    let rest = &message[message.find("Wire { row: ")? + "Wire { row: ".len()..];
    let (row, rest) = rest.split_once(", column: ")?;
    let column = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    Some(Wire {
        row: row.parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// Proves with `prove` and verifies with `data`, turning an error, a panic of the prover or a
/// failed verification into its message (for attack tests, which expect the refusal).
#[cfg(test)]
pub(crate) fn prove_and_verify(
    data: &plonky2::plonk::circuit_data::CircuitData<crate::F, crate::C, { crate::D }>,
    prove: impl FnOnce() -> anyhow::Result<Proof>,
) -> Result<Proof, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(prove)) {
        Ok(Ok(p)) => data
            .verify(p.clone())
            .map(|_| p)
            .map_err(|e| format!("verify: {e}")),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(panic) => Err(format!(
            "prove panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        )),
    }
}

#[cfg(test)]
type Proof = plonky2::plonk::proof::ProofWithPublicInputs<crate::F, crate::C, { crate::D }>;
