//! Which cell holds each tensor element, and its witness value.
//!
//! Every element of every integer-IR value has one *canonical* cell: where the op that
//! computes it writes it (the model input's is its first use, tied to the instance
//! column). Any other use of the element is a fresh cell copy-constrained to it.
//! Reshape, Rearrange and Concat ops add no cells: their elements resolve to their
//! sources'.

use halo2_proofs::circuit::{Cell, Region, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Advice, Column, Error};
use zkinfer_qir::{Add, Linear, QModel, QOp, Trace, ValueId};

use crate::fe;
use crate::params::OpParams;

enum Alias<'a> {
    Root,
    Same(ValueId),
    Index(ValueId, &'a [Option<usize>]),
    Gather(&'a [ValueId], &'a [Option<(usize, usize)>]),
}

/// Where the elements of data-movement ops (Reshape, Rearrange, Concat) come from,
/// borrowed from the model: what [`Wires`] resolves elements with, without its cells.
pub struct Aliases<'a>(Vec<Alias<'a>>);

impl<'a> Aliases<'a> {
    pub fn new(model: &'a QModel) -> Self {
        let mut alias: Vec<Alias> = model.values.iter().map(|_| Alias::Root).collect();
        for op in &model.ops {
            match op {
                QOp::Reshape(r) => alias[r.output.0] = Alias::Same(r.input),
                QOp::Rearrange(r) => alias[r.output.0] = Alias::Index(r.input, &r.index),
                QOp::Concat(c) => alias[c.output.0] = Alias::Gather(&c.inputs, &c.index),
                _ => {}
            }
        }
        Aliases(alias)
    }

    /// The root element (or padding zero) element `i` of `id` is.
    pub fn resolve(&self, mut id: ValueId, mut i: usize) -> Source {
        loop {
            match &self.0[id.0] {
                Alias::Root => return Source::Element(id, i),
                Alias::Same(src) => id = *src,
                Alias::Index(src, index) => match index[i] {
                    Some(j) => {
                        i = j;
                        id = *src;
                    }
                    None => return Source::Zero,
                },
                Alias::Gather(srcs, index) => match index[i] {
                    Some((k, j)) => {
                        i = j;
                        id = srcs[k];
                    }
                    None => return Source::Zero,
                },
            }
        }
    }
}

/// Where an element lives: an element of a root value, or the constant zero (padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Element(ValueId, usize),
    Zero,
}

/// A parameter an op uses, for tying its cell to the hashed parameters.
#[derive(Clone, Copy, Debug)]
pub enum Param<'o> {
    /// Padding: the constant 0.
    Zero,
    /// The op's `i`-th weight.
    Weight(usize),
    /// The bias of row `r`, neuron `n`.
    Bias(&'o Linear, usize, usize),
    /// The multiplier of element `i` of an addition of a constant.
    Mul(&'o Add, usize),
    /// The constant of element `i`.
    Constant(usize),
}

/// The canonical cells of the hashed parameters (see [`crate::params::Params`]).
#[derive(Clone, Debug)]
pub struct ParamCells {
    pub weights: Vec<Cell>,
    pub wide: Vec<Cell>,
    pub index: Vec<Option<OpParams>>,
}

pub struct Wires<'a> {
    model: &'a QModel,
    trace: Option<&'a Trace>,
    alias: Aliases<'a>,
    cells: Vec<Vec<Option<Cell>>>,
    /// The canonical zero cell, constrained to the constant 0 on first use.
    zero: Option<Cell>,
    /// The canonical one cell, likewise.
    one: Option<Cell>,
    params: Option<ParamCells>,
}

impl<'a> Wires<'a> {
    pub fn new(model: &'a QModel, trace: Option<&'a Trace>) -> Self {
        let alias = Aliases::new(model);
        let cells = model.values.iter().map(|v| vec![None; v.len()]).collect();
        Wires {
            model,
            trace,
            alias,
            cells,
            zero: None,
            one: None,
            params: None,
        }
    }

    /// Makes the hashed parameters' cells the ones ops copy their parameters from.
    pub fn set_params(&mut self, params: ParamCells) {
        self.params = Some(params);
    }

    /// Ties `cell` to the constant 0 (through one canonical zero cell).
    pub fn tie_zero(&mut self, region: &mut Region<'_, Fr>, cell: Cell) -> Result<(), Error> {
        tie_constant(region, &mut self.zero, cell, Fr::zero())
    }

    /// Ties `cell` to the constant 1 (through one canonical one cell).
    pub fn tie_one(&mut self, region: &mut Region<'_, Fr>, cell: Cell) -> Result<(), Error> {
        tie_constant(region, &mut self.one, cell, Fr::one())
    }

    /// Ties `cell`, which holds parameter `p` of op `op`, to the hashed parameter.
    pub fn tie_param(
        &mut self,
        region: &mut Region<'_, Fr>,
        cell: Cell,
        op: usize,
        p: Param<'_>,
    ) -> Result<(), Error> {
        if let Param::Zero = p {
            return self.tie_zero(region, cell);
        }
        let params = self.params.as_ref().ok_or(Error::Synthesis)?;
        let at = params
            .index
            .get(op)
            .copied()
            .flatten()
            .ok_or(Error::Synthesis)?;
        let target = match p {
            Param::Zero => return Err(Error::Synthesis),
            Param::Weight(i) => params.weights.get(at.weight + i),
            Param::Bias(l, r, n) => {
                let i = if l.bias.len() == l.out_features {
                    n
                } else {
                    r * l.out_features + n
                };
                params.wide.get(at.bias + i)
            }
            Param::Mul(a, i) => params
                .wide
                .get(at.mul + if a.a_mul.len() == 1 { 0 } else { i }),
            Param::Constant(i) => params.wide.get(at.constant + i),
        };
        region.constrain_equal(cell, *target.ok_or(Error::Synthesis)?);
        Ok(())
    }

    /// The value and element that actually hold `(id, i)`.
    pub fn resolve(&self, id: ValueId, i: usize) -> Source {
        self.alias.resolve(id, i)
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
                self.tie_zero(region, cell)?;
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

/// Ties `cell` to `constant` through `canonical`, the first cell so tied (only it takes a
/// row of the constants column).
fn tie_constant(
    region: &mut Region<'_, Fr>,
    canonical: &mut Option<Cell>,
    cell: Cell,
    constant: Fr,
) -> Result<(), Error> {
    match canonical {
        Some(c) => region.constrain_equal(cell, *c),
        None => {
            region.constrain_constant(cell, constant)?;
            *canonical = Some(cell);
        }
    }
    Ok(())
}
