//! The advice columns of a proof, written straight from the chips' assignments.
//!
//! halo2's `create_proof` collects the witness itself: every cell becomes an
//! `Assigned` value (a possible fraction, 72 bytes) in a table of the whole circuit that
//! is then batch-inverted, and the layouter also records selectors, fixed cells and copy
//! constraints that only key generation needs. [`advice_columns`] runs the same
//! [`ModelCircuit::synthesize`] (so the cells are exactly the ones the key was made for)
//! into plain field-element columns and ignores the rest; the prover hands them to
//! `create_proof_from_advice`, which commits to them directly.

use halo2_proofs::circuit::{SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::halo2curves::ff::Field;
use halo2_proofs::plonk::{
    Advice, Any, Assigned, Assignment, Challenge, Circuit, Column, ConstraintSystem, Error, Fixed,
    FloorPlanner, Instance, Selector,
};

use crate::ModelCircuit;

/// The advice columns of `circuit` (which must carry its trace): one vector of `2^k`
/// values per advice column, the rows halo2 reserves for blinding left zero. A circuit
/// with a second phase cannot be written ahead of the proof (its challenge comes from
/// the transcript): `Error::Synthesis`.
pub fn advice_columns(circuit: &ModelCircuit) -> Result<Vec<Vec<Fr>>, Error> {
    write(circuit, None).map(|w| w.columns)
}

/// Rows synthesis writes in each advice column of `circuit` (one past the last written
/// row), for checking a plan against what synthesis lays out; a second phase is written
/// with an arbitrary challenge.
pub fn advice_rows_used(circuit: &ModelCircuit) -> Result<Vec<usize>, Error> {
    write(circuit, Some(Fr::from(7))).map(|w| w.used)
}

fn write(circuit: &ModelCircuit, challenge: Option<Fr>) -> Result<AdviceWriter, Error> {
    let mut cs = ConstraintSystem::default();
    let config = ModelCircuit::configure_with_params(&mut cs, circuit.layout.clone());
    let n = 1usize << circuit.layout.k;
    let usable = n.saturating_sub(cs.blinding_factors() + 1);
    let mut writer = AdviceWriter {
        columns: vec![vec![Fr::ZERO; n]; cs.num_advice_columns()],
        used: vec![0; cs.num_advice_columns()],
        usable,
        k: circuit.layout.k,
        challenge,
        failure: None,
    };
    SimpleFloorPlanner::synthesize(&mut writer, circuit, config, cs.constants().clone())?;
    match writer.failure.take() {
        Some(e) => Err(e),
        None => Ok(writer),
    }
}

/// An [`Assignment`] that keeps only the advice values.
struct AdviceWriter {
    columns: Vec<Vec<Fr>>,
    /// One past the last row written, per column.
    used: Vec<usize>,
    usable: usize,
    k: u32,
    /// What the second phase's challenge reads as (unknown when `None`).
    challenge: Option<Fr>,
    /// The first assignment that could not be written (assign_advice cannot fail).
    failure: Option<Error>,
}

impl Assignment<Fr> for AdviceWriter {
    fn enter_region<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn annotate_column<A, AR>(&mut self, _: A, _: Column<Any>)
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
    }

    fn exit_region(&mut self) {}

    fn enable_selector<A, AR>(&mut self, _: A, _: &Selector, _: usize) -> Result<(), Error>
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        Ok(())
    }

    fn query_instance(&self, _: Column<Instance>, _: usize) -> Result<Value<Fr>, Error> {
        // The model circuit constrains cells to the instance column but never reads it.
        Ok(Value::unknown())
    }

    /// Writes the value; the returned reference is unknown, since no chip reads an
    /// assigned value back (each computes its values from the trace).
    fn assign_advice<'v>(
        &mut self,
        column: Column<Advice>,
        row: usize,
        to: Value<Assigned<Fr>>,
    ) -> Value<&'v Assigned<Fr>> {
        let mut value = None;
        to.map(|v| value = Some(v.evaluate()));
        match (value, self.columns.get_mut(column.index())) {
            (Some(v), Some(col)) if row < self.usable => {
                col[row] = v;
                let used = &mut self.used[column.index()];
                *used = (*used).max(row + 1);
            }
            _ if self.failure.is_some() => {}
            (None, _) => self.failure = Some(Error::Synthesis),
            (_, None) => self.failure = Some(Error::Synthesis),
            (Some(_), Some(_)) => {
                self.failure = Some(Error::NotEnoughRowsAvailable { current_k: self.k })
            }
        }
        Value::unknown()
    }

    fn assign_fixed(&mut self, _: Column<Fixed>, _: usize, _: Assigned<Fr>) {}

    fn copy(&mut self, _: Column<Any>, _: usize, _: Column<Any>, _: usize) {}

    fn fill_from_row(
        &mut self,
        _: Column<Fixed>,
        _: usize,
        _: Value<Assigned<Fr>>,
    ) -> Result<(), Error> {
        Ok(())
    }

    fn get_challenge(&self, _: Challenge) -> Value<Fr> {
        match self.challenge {
            Some(c) => Value::known(c),
            None => Value::unknown(),
        }
    }

    fn push_namespace<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn pop_namespace(&mut self, _: Option<String>) {}
}
