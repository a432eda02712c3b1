//! Which cell holds each tensor element, and its witness value.
//!
//! Every element of every integer-IR value has one *canonical* cell: where the op that
//! computes it writes it (the model input's is its first use, tied to the instance
//! column). Any other use of the element is a fresh cell copy-constrained to it.
//! Reshape and Rearrange ops add no cells: their elements resolve to their source's.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, Error};
use zkinfer_qir::{QModel, QOp, Trace, ValueId};

use crate::fe;

enum Alias {
    Root,
    Same(ValueId),
    Index(ValueId, Vec<Option<usize>>),
}

/// Where an element lives: an element of a root value, or the constant zero (padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Element(ValueId, usize),
    Zero,
}

pub struct Wires<'a> {
    model: &'a QModel,
    trace: Option<&'a Trace>,
    alias: Vec<Alias>,
    cells: Vec<Vec<Option<Cell>>>,
    /// The canonical zero cell, constrained to the constant 0 on first use.
    zero: Option<Cell>,
}

impl<'a> Wires<'a> {
    pub fn new(model: &'a QModel, trace: Option<&'a Trace>) -> Self {
        let mut alias: Vec<Alias> = model.values.iter().map(|_| Alias::Root).collect();
        for op in &model.ops {
            match op {
                QOp::Reshape(r) => alias[r.output.0] = Alias::Same(r.input),
                QOp::Rearrange(r) => alias[r.output.0] = Alias::Index(r.input, r.index.clone()),
                _ => {}
            }
        }
        let cells = model.values.iter().map(|v| vec![None; v.len()]).collect();
        Wires {
            model,
            trace,
            alias,
            cells,
            zero: None,
        }
    }

    /// The value and element that actually hold `(id, i)`.
    pub fn resolve(&self, mut id: ValueId, mut i: usize) -> Source {
        loop {
            match &self.alias[id.0] {
                Alias::Root => return Source::Element(id, i),
                Alias::Same(src) => id = *src,
                Alias::Index(src, index) => match index[i] {
                    Some(j) => {
                        i = j;
                        id = *src;
                    }
                    None => return Source::Zero,
                },
            }
        }
    }

    /// The integer witness of `(id, i)`, if proving.
    pub fn raw(&self, id: ValueId, i: usize) -> Option<i64> {
        self.trace.map(|t| t.get(id)[i])
    }

    pub fn value(&self, id: ValueId, i: usize) -> Value<Fr> {
        match self.raw(id, i) {
            Some(v) => Value::known(fe(v)),
            None => Value::unknown(),
        }
    }

    /// Records the cell where the op computing `(id, i)` wrote it.
    pub fn define(&mut self, id: ValueId, i: usize, cell: Cell) {
        self.cells[id.0][i] = Some(cell);
    }

    /// Writes `(id, i)` into `column` at `offset`, tied to its canonical cell.
    pub fn copy_in(
        &mut self,
        region: &mut Region<'_, Fr>,
        column: Column<Advice>,
        offset: usize,
        id: ValueId,
        i: usize,
    ) -> Result<Cell, Error> {
        let (root, j) = match self.resolve(id, i) {
            Source::Element(root, j) => (root, j),
            Source::Zero => {
                let cell = region
                    .assign_advice(column, offset, Value::known(Fr::zero()))
                    .cell();
                match self.zero {
                    Some(zero) => region.constrain_equal(cell, zero),
                    None => {
                        region.constrain_constant(cell, Fr::zero())?;
                        self.zero = Some(cell);
                    }
                }
                return Ok(cell);
            }
        };
        let cell = region
            .assign_advice(column, offset, self.value(root, j))
            .cell();
        match self.cells[root.0][j] {
            Some(canonical) => region.constrain_equal(cell, canonical),
            None if root == self.model.input => self.cells[root.0][j] = Some(cell),
            // The IR is validated (values are defined before use), so this is a bug.
            None => return Err(Error::Synthesis),
        }
        Ok(cell)
    }

    /// Canonical cell of `(id, i)` once assigned.
    pub fn cell(&self, id: ValueId, i: usize) -> Option<Cell> {
        match self.resolve(id, i) {
            Source::Element(root, j) => self.cells[root.0][j],
            Source::Zero => self.zero,
        }
    }
}
