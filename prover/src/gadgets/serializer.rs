//! Gate and witness-generator serializers covering plonky2's defaults plus this crate's
//! custom gates and generators, for caching circuits on disk
//! (`CircuitData::to_bytes` / `from_bytes`).
//!
//! The tag of an entry is its position in the list: append new gates/generators at the end
//! and bump the cache key's version when the list changes, or old cache files will be
//! misread (they are checked against the circuit digest anyway and rebuilt on mismatch).

use plonky2::gadgets::arithmetic::EqualityGenerator;
use plonky2::gadgets::arithmetic_extension::QuotientGeneratorExtension;
use plonky2::gadgets::range_check::LowHighGenerator;
use plonky2::gadgets::split_base::BaseSumGenerator;
use plonky2::gadgets::split_join::{SplitGenerator, WireSplitGenerator};
use plonky2::gates::arithmetic_base::ArithmeticBaseGenerator;
use plonky2::gates::arithmetic_base::ArithmeticGate;
use plonky2::gates::arithmetic_extension::ArithmeticExtensionGate;
use plonky2::gates::arithmetic_extension::ArithmeticExtensionGenerator;
use plonky2::gates::base_sum::BaseSplitGenerator;
use plonky2::gates::base_sum::BaseSumGate;
use plonky2::gates::constant::ConstantGate;
use plonky2::gates::coset_interpolation::CosetInterpolationGate;
use plonky2::gates::coset_interpolation::InterpolationGenerator;
use plonky2::gates::exponentiation::ExponentiationGate;
use plonky2::gates::exponentiation::ExponentiationGenerator;
use plonky2::gates::lookup::LookupGate;
use plonky2::gates::lookup::LookupGenerator;
use plonky2::gates::lookup_table::LookupTableGate;
use plonky2::gates::lookup_table::LookupTableGenerator;
use plonky2::gates::multiplication_extension::MulExtensionGate;
use plonky2::gates::multiplication_extension::MulExtensionGenerator;
use plonky2::gates::noop::NoopGate;
use plonky2::gates::poseidon::PoseidonGate;
use plonky2::gates::poseidon::PoseidonGenerator;
use plonky2::gates::poseidon_mds::PoseidonMdsGate;
use plonky2::gates::poseidon_mds::PoseidonMdsGenerator;
use plonky2::gates::public_input::PublicInputGate;
use plonky2::gates::random_access::RandomAccessGate;
use plonky2::gates::random_access::RandomAccessGenerator;
use plonky2::gates::reducing::ReducingGate;
use plonky2::gates::reducing::ReducingGenerator;
use plonky2::gates::reducing_extension::ReducingExtensionGate;
use plonky2::gates::reducing_extension::ReducingGenerator as ReducingExtensionGenerator;
use plonky2::iop::generator::{
    ConstantGenerator, CopyGenerator, NonzeroTestGenerator, RandomValueGenerator,
};
use plonky2::recursion::dummy_circuit::DummyProofGenerator;
use plonky2::util::serialization::{GateSerializer, WitnessGeneratorSerializer};
use plonky2::{get_gate_tag_impl, get_generator_tag_impl, impl_gate_serializer};
use plonky2::{impl_generator_serializer, read_gate_impl, read_generator_impl};

use super::curve::{
    EcAddGate, EcAddGenerator, KeyDecodeGate, KeyDecodeGenerator, ScalarMulStepGate,
    ScalarMulStepGenerator,
};
use super::gfp5::{Gfp5InverseGenerator, Gfp5MulGate, Gfp5MulGenerator};
use super::range::SplitGenerator as LimbSplitGenerator;
use super::sha256::{
    Sha256RoundAGate, Sha256RoundAGenerator, Sha256RoundEGate, Sha256RoundEGenerator,
    Sha256ScheduleGate, Sha256ScheduleGenerator,
};
use crate::{C, D, F};

/// Every gate a rollup circuit may contain.
#[derive(Debug, Default, Clone, Copy)]
pub struct RollupGateSerializer;

impl GateSerializer<F, D> for RollupGateSerializer {
    impl_gate_serializer! {
        RollupGateSerializer,
        ArithmeticGate,
        ArithmeticExtensionGate<D>,
        BaseSumGate<2>,
        ConstantGate,
        CosetInterpolationGate<F, D>,
        ExponentiationGate<F, D>,
        LookupGate,
        LookupTableGate,
        MulExtensionGate<D>,
        NoopGate,
        PoseidonMdsGate<F, D>,
        PoseidonGate<F, D>,
        PublicInputGate,
        RandomAccessGate<F, D>,
        ReducingExtensionGate<D>,
        ReducingGate<D>,
        Gfp5MulGate,
        EcAddGate,
        ScalarMulStepGate,
        KeyDecodeGate,
        Sha256RoundEGate,
        Sha256RoundAGate,
        Sha256ScheduleGate
    }
}

/// Every witness generator a rollup circuit may contain.
#[derive(Debug, Default, Clone, Copy)]
pub struct RollupGeneratorSerializer;

impl WitnessGeneratorSerializer<F, D> for RollupGeneratorSerializer {
    impl_generator_serializer! {
        RollupGeneratorSerializer,
        ArithmeticBaseGenerator<F, D>,
        ArithmeticExtensionGenerator<F, D>,
        BaseSplitGenerator<2>,
        BaseSumGenerator<2>,
        ConstantGenerator<F>,
        CopyGenerator,
        DummyProofGenerator<F, C, D>,
        EqualityGenerator,
        ExponentiationGenerator<F, D>,
        InterpolationGenerator<F, D>,
        LookupGenerator,
        LookupTableGenerator,
        LowHighGenerator,
        MulExtensionGenerator<F, D>,
        NonzeroTestGenerator,
        PoseidonGenerator<F, D>,
        PoseidonMdsGenerator<D>,
        QuotientGeneratorExtension<D>,
        RandomAccessGenerator<F, D>,
        RandomValueGenerator,
        ReducingGenerator<D>,
        ReducingExtensionGenerator<D>,
        SplitGenerator,
        WireSplitGenerator,
        Gfp5MulGenerator,
        Gfp5InverseGenerator,
        EcAddGenerator,
        ScalarMulStepGenerator,
        KeyDecodeGenerator,
        Sha256RoundEGenerator,
        Sha256RoundAGenerator,
        Sha256ScheduleGenerator,
        LimbSplitGenerator
    }
}
