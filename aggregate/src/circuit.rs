//! The aggregation circuit: snark-verifier's (every inner proof verified up to its final
//! pairing, the pairings folded into one KZG accumulator), with what zkinfer adds:
//! the links between consecutive segments constrained equal inside it, and one Poseidon
//! digest of every inner public value exposed beside the accumulator (of a tree's node:
//! of its segments' public values and its child nodes' digests and exposed links,
//! [`crate::tree`]).
//!
//! Public values of the aggregated proof: the accumulator's 12 limbs (`lhs.x, lhs.y,
//! rhs.x, rhs.y`, 3 limbs of 88 bits each), then the statement digest.

#[cfg(feature = "prove")]
pub use build::{build, Config, Stage};
use halo2_proofs::halo2curves::bn256::Fr;

/// The accumulator's encoding: each coordinate in `LIMBS` limbs of `BITS` bits
/// (snark-verifier-sdk's `LIMBS` and `BITS`, tested equal below).
pub const LIMBS: usize = 3;
pub const BITS: usize = 88;

/// Public values of an aggregated proof: the accumulator's limbs, then the digest.
pub const ACCUMULATOR_LIMBS: usize = 4 * LIMBS;
pub const NUM_INSTANCE: usize = ACCUMULATOR_LIMBS + 1;

/// Poseidon (snark-verifier's sponge, the one the circuit runs) of the public values of
/// every aggregated proof, in order; computed natively by zkinfer's own permutation
/// (`zkinfer_circuits::poseidon::sponge_hash`, checked against snark-verifier's below).
pub fn statement_digest(instances: &[Vec<Fr>]) -> Fr {
    zkinfer_circuits::poseidon::sponge_hash(&instances.concat())
}

/// Where a segment's linked boundaries sit among its public values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    /// (proof, index) of the earlier segment's output link.
    pub output: (usize, usize),
    /// (proof, index) of the later segment's input link.
    pub input: (usize, usize),
}

#[cfg(feature = "prove")]
mod build {
    use std::mem;

    use halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
    use halo2_proofs::poly::kzg::commitment::ParamsKZG;
    use snark_verifier::loader::halo2::halo2_ecc::bn254::FpChip;
    use snark_verifier::loader::halo2::halo2_ecc::ecc::BaseFieldEccChip;
    use snark_verifier::loader::halo2::Halo2Loader;
    use snark_verifier::util::hash::Poseidon;
    use snark_verifier_sdk::halo2::aggregation::{
        AggregationCircuit, AggregationConfigParams, VerifierUniversality,
    };
    use snark_verifier_sdk::halo2::POSEIDON_SPEC;
    use snark_verifier_sdk::{Snark, BITS, LIMBS, SHPLONK};

    pub use snark_verifier::halo2_base::gates::circuit::CircuitBuilderStage as Stage;
    pub use snark_verifier_sdk::halo2::aggregation::AggregationConfigParams as Config;

    use super::ACCUMULATOR_LIMBS;
    use crate::tree::{Node, Part};

    /// Builds the aggregation circuit of `node` over `snarks` (its parts' proofs, with the
    /// Poseidon transcript, SHPLONK) at `stage`: inner verification (an aggregated part's
    /// accumulator folded in), the links constrained equal, the digest and the node's
    /// ends exposed. Each inner proof's verifying key is a constant of the circuit
    /// ([`VerifierUniversality::None`]): the aggregated key binds them.
    pub fn build(
        stage: Stage,
        config: AggregationConfigParams,
        params: &ParamsKZG<Bn256>,
        snarks: Vec<Snark>,
        node: &Node,
    ) -> AggregationCircuit {
        let mut circuit = AggregationCircuit::new::<SHPLONK>(
            stage,
            config,
            params,
            snarks,
            VerifierUniversality::None,
        );
        let previous = circuit.previous_instances().clone();
        let ctx = circuit.builder.main(0);
        for link in &node.links {
            let out = previous[link.output.0][link.output.1];
            let inp = previous[link.input.0][link.input.1];
            ctx.constrain_equal(&out, &inp);
        }
        let range = circuit.builder.range_chip();
        let fp_chip = FpChip::<Fr>::new(&range, BITS, LIMBS);
        let ecc_chip = BaseFieldEccChip::<G1Affine>::new(&fp_chip);
        let pool = mem::take(circuit.builder.pool(0));
        let loader = Halo2Loader::<G1Affine, _>::new(ecc_chip, pool);
        let digest = {
            let mut h = Poseidon::from_spec(&loader, POSEIDON_SPEC.clone());
            for (snark, part) in previous.iter().zip(&node.parts) {
                let stated = match part {
                    Part::Segment(_) => &snark[..],
                    Part::Node(_) => &snark[ACCUMULATOR_LIMBS..],
                };
                let scalars: Vec<_> = stated
                    .iter()
                    .map(|&x| loader.scalar_from_assigned(x))
                    .collect();
                h.update(&scalars);
            }
            h.squeeze().into_assigned()
        };
        *circuit.builder.pool(0) = loader.take_ctx();
        circuit.builder.assigned_instances[0].push(digest);
        for &(part, index) in &node.ends {
            circuit.builder.assigned_instances[0].push(previous[part][index]);
        }
        circuit
    }
}

#[cfg(all(test, feature = "prove"))]
mod tests {
    use super::*;
    use snark_verifier::loader::native::NativeLoader;
    use snark_verifier::util::hash::Poseidon;
    use snark_verifier_sdk::halo2::POSEIDON_SPEC;

    #[test]
    fn the_accumulator_encoding_is_snark_verifiers() {
        assert_eq!(
            (LIMBS, BITS),
            (snark_verifier_sdk::LIMBS, snark_verifier_sdk::BITS)
        );
    }

    /// snark-verifier's own native sponge, with the spec the circuit uses.
    fn reference(message: &[Fr]) -> Fr {
        let mut h = Poseidon::<Fr, Fr, 3, 2>::from_spec(&NativeLoader, POSEIDON_SPEC.clone());
        h.update(message);
        h.squeeze()
    }

    #[test]
    fn the_native_digest_is_snark_verifiers_sponge() {
        for n in 0..7 {
            let message: Vec<Fr> = (0..n).map(|i| Fr::from(3 * i as u64 + 7)).collect();
            assert_eq!(
                zkinfer_circuits::poseidon::sponge_hash(&message),
                reference(&message),
                "{n} elements"
            );
        }
    }
}
