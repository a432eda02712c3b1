//! The aggregation circuit's constraint system, as halo2-base 0.5 configures it, without
//! halo2-base: what reading an aggregation verifying key needs (halo2 rebuilds a key's
//! constraint system from its circuit type), so that the verifier builds where
//! halo2-base does not (WebAssembly: halo2-base forces halo2's multicore feature).
//!
//! halo2-base's `BaseConfig` with one phase, as snark-verifier-sdk's
//! `AggregationCircuit` uses it: a lookup table of `lookup_bits` bits, `num_fixed`
//! constant columns, `num_advice` columns each with the vertical gate
//! `q·(a + b·c − d)` over four rows, `num_lookup_advice` columns looked up in the table
//! (or, with one advice column, a selector-gated lookup of it), one instance column.
//! Columns are created in halo2-base's order: a different order is another circuit. The
//! test below (and every aggregated proof verified) holds it to halo2-base's.

use std::marker::PhantomData;

use halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_proofs::halo2curves::ff::PrimeField;
use halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};
use halo2_proofs::poly::Rotation;
use serde::{Deserialize, Serialize};

/// snark-verifier-sdk's `AggregationConfigParams`, field for field (the aggregation key's
/// header stores it; the aggregate id hashes that header).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub degree: u32,
    pub num_advice: usize,
    pub num_lookup_advice: usize,
    pub num_fixed: usize,
    pub lookup_bits: usize,
}

/// A circuit with the aggregation circuit's constraint system and no witness: only
/// `configure_with_params` is ever called (by halo2's key readers).
pub struct Shape<F>(PhantomData<F>);

impl<F: PrimeField> Circuit<F> for Shape<F> {
    type Config = ();
    type FloorPlanner = SimpleFloorPlanner;
    type Params = Layout;

    fn without_witnesses(&self) -> Self {
        Shape(PhantomData)
    }

    fn params(&self) -> Layout {
        Layout::default()
    }

    fn configure_with_params(meta: &mut ConstraintSystem<F>, layout: Layout) {
        // halo2-base `BaseConfig::configure`: a range config when there are lookup columns.
        let table = (layout.num_lookup_advice != 0).then(|| meta.lookup_table_column());
        // `FlexGateConfig::configure`: the constant columns, then the gated advice columns.
        for _ in 0..layout.num_fixed {
            let c = meta.fixed_column();
            meta.enable_equality(c);
        }
        let mut advice = Vec::with_capacity(layout.num_advice);
        for _ in 0..layout.num_advice {
            let value = meta.advice_column();
            meta.enable_equality(value);
            let q = meta.selector();
            meta.create_gate("1 column a + b * c = out", |meta| {
                let q = meta.query_selector(q);
                let a = meta.query_advice(value, Rotation::cur());
                let b = meta.query_advice(value, Rotation::next());
                let c = meta.query_advice(value, Rotation(2));
                let out = meta.query_advice(value, Rotation(3));
                vec![q * (a + b * c - out)]
            });
            advice.push(value);
        }
        // `RangeConfig::configure`: its lookups.
        if let Some(table) = table {
            if layout.num_advice == 1 {
                let q = meta.complex_selector();
                let value = advice[0];
                meta.lookup("lookup", |meta| {
                    let q = meta.query_selector(q);
                    let a = meta.query_advice(value, Rotation::cur());
                    vec![(q * a, table)]
                });
            } else {
                let columns: Vec<_> = (0..layout.num_lookup_advice)
                    .map(|_| {
                        let a = meta.advice_column();
                        meta.enable_equality(a);
                        a
                    })
                    .collect();
                for la in columns {
                    meta.lookup("lookup wo selector", |meta| {
                        let a = meta.query_advice(la, Rotation::cur());
                        vec![(a, table)]
                    });
                }
            }
        }
        let instance = meta.instance_column();
        meta.enable_equality(instance);
    }

    fn configure(_: &mut ConstraintSystem<F>) {
        // Keys are read with `configure_with_params` (halo2's `circuit-params`).
    }

    fn synthesize(&self, _: (), _: impl Layouter<F>) -> Result<(), Error> {
        // Never proven: the aggregation circuit is halo2-base's (the `prove` feature).
        Err(Error::Synthesis)
    }
}

#[cfg(feature = "prove")]
mod sdk {
    use snark_verifier_sdk::halo2::aggregation::AggregationConfigParams;

    use super::Layout;

    impl From<Layout> for AggregationConfigParams {
        fn from(l: Layout) -> Self {
            AggregationConfigParams {
                degree: l.degree,
                num_advice: l.num_advice,
                num_lookup_advice: l.num_lookup_advice,
                num_fixed: l.num_fixed,
                lookup_bits: l.lookup_bits,
            }
        }
    }

    impl From<AggregationConfigParams> for Layout {
        fn from(p: AggregationConfigParams) -> Self {
            Layout {
                degree: p.degree,
                num_advice: p.num_advice,
                num_lookup_advice: p.num_lookup_advice,
                num_fixed: p.num_fixed,
                lookup_bits: p.lookup_bits,
            }
        }
    }
}

#[cfg(all(test, feature = "prove"))]
mod tests {
    use halo2_proofs::halo2curves::bn256::Fr;
    use snark_verifier_sdk::halo2::aggregation::{AggregationCircuit, AggregationConfigParams};

    use super::*;

    /// The constraint system of `C` configured with `layout`, as halo2 pins it in a key.
    fn pinned<C: Circuit<Fr>>(params: C::Params) -> String {
        let mut cs = ConstraintSystem::<Fr>::default();
        C::configure_with_params(&mut cs, params);
        format!("{:?}", cs.pinned())
    }

    #[test]
    fn the_shape_is_halo2_bases_aggregation_circuit() {
        for (num_advice, num_lookup_advice, num_fixed) in [
            (1, 1, 1),
            (1, 2, 1),
            (2, 1, 0),
            (3, 1, 1),
            (9, 1, 1),
            (12, 2, 1),
            (4, 0, 2),
            (1, 0, 1),
        ] {
            let layout = Layout {
                degree: 21,
                num_advice,
                num_lookup_advice,
                num_fixed,
                lookup_bits: 20,
            };
            let theirs = pinned::<AggregationCircuit>(AggregationConfigParams::from(layout));
            assert_eq!(pinned::<Shape<Fr>>(layout), theirs, "{layout:?}");
            assert_eq!(Layout::from(AggregationConfigParams::from(layout)), layout);
            // The header's encoding is the SDK's (the aggregate id hashes it).
            assert_eq!(
                serde_json::to_string(&layout).unwrap(),
                serde_json::to_string(&AggregationConfigParams::from(layout)).unwrap()
            );
        }
    }
}
