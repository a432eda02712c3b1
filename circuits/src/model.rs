//! The model circuit: strings the chips together for a [`QModel`].
//!
//! Sections share rows from 0, each in its own columns: the linear section (blocks of
//! [`LinearConfig`]), the element-wise lanes (one element per lane row), and when the
//! statement hashes anything the weight-packing lanes and the Poseidon lanes. Data moves
//! between sections only by copy constraints, so row order is free. The instance column
//! holds the public values [`crate::Visibility`] names, in its order.

use std::sync::Arc;

use halo2_proofs::circuit::{Cell, Layouter, Region, SimpleFloorPlanner, Value};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, Column, ConstraintSystem, Error, Instance};
use zkinfer_qir::{QModel, QOp, Trace, ValueId};

use crate::elementwise::LaneConfig;
use crate::fe;
use crate::freivalds::{FreivaldsConfig, Placement};
use crate::layout::{InputMode, Layout, OutputMode, ParamsMode};
use crate::linear::LinearConfig;
use crate::params::{chunk_slot, pack, per_element, PackConfig, PackRange, Params};
use crate::poseidon::{assign_hash, hash, Domain, Element, PoseidonConfig, BLOCK_ROWS};
use crate::rows::{
    add_is_parametric, input_is_range_checked, output_needs_zero_cell, rescale_is_wide,
};
use crate::table::TableConfig;
use crate::wires::{ParamCells, Source, Wires};

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub linear: LinearConfig,
    /// Freivalds' argument for the layout's `freivalds` ops (none when it has none).
    pub freivalds: Option<FreivaldsConfig>,
    pub lanes: Vec<LaneConfig>,
    pub table: TableConfig,
    pub pack: Vec<PackConfig>,
    /// Boundary-packing lanes (a linked segment's boundaries, see [`link`]).
    pub link: Vec<PackConfig>,
    pub hash: Vec<PoseidonConfig>,
    pub instance: Column<Instance>,
}

/// The salts of a segment's linked boundaries (see [`crate::Visibility`]): random field
/// elements the prover draws for each cut and uses in both proofs the cut links. Unused
/// (zero) at an end that is not linked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Salts {
    pub input: Fr,
    pub output: Fr,
}

/// A [`QModel`] as a halo2 circuit, with the witness when proving.
#[derive(Clone, Debug)]
pub struct ModelCircuit {
    pub model: Arc<QModel>,
    pub layout: Layout,
    pub trace: Option<Arc<Trace>>,
    pub salts: Salts,
}

/// The link value of a boundary of `bits`-bit values: the hash in the boundary domain of
/// the salt and the values packed `⌊252 / bits⌋` to a field element (as weights are, see
/// [`crate::params`]; every boundary value is an activation, so the packing is
/// injective).
pub fn link(salt: Fr, values: &[i64], bits: u32) -> Fr {
    let message: Vec<Fr> = std::iter::once(salt)
        .chain(values.chunks(per_element(bits)).map(|c| pack(c, bits)))
        .collect();
    hash(Domain::Boundary, &message)
}

impl ModelCircuit {
    /// The circuit for key generation (no witness).
    pub fn new(model: Arc<QModel>, layout: Layout) -> Self {
        ModelCircuit {
            model,
            layout,
            trace: None,
            salts: Salts::default(),
        }
    }

    /// The circuit for proving: `trace` is the integer interpreter's run on the input.
    pub fn with_trace(model: Arc<QModel>, layout: Layout, trace: Arc<Trace>) -> Self {
        ModelCircuit {
            model,
            layout,
            trace: Some(trace),
            salts: Salts::default(),
        }
    }

    /// The same circuit with the salts of its linked boundaries.
    pub fn salted(self, salts: Salts) -> Self {
        ModelCircuit { salts, ..self }
    }

    /// The public values (see [`crate::Visibility`]), computed natively.
    pub fn instances(model: &QModel, layout: &Layout, trace: &Trace, salts: &Salts) -> Vec<Fr> {
        let v = layout.visibility;
        let mut out = Vec::new();
        if v.params == ParamsMode::Hashed {
            out.push(Params::of(model).hash(layout.weight_bits));
        }
        let values = |id: ValueId| trace.get(id).iter().map(|&x| fe(x)).collect::<Vec<_>>();
        let bits = model.act_bits;
        match v.input {
            InputMode::Public => out.extend(values(model.input)),
            InputMode::Private => {}
            InputMode::Hashed => out.push(hash(Domain::Input, &values(model.input))),
            InputMode::Linked => out.push(link(salts.input, trace.get(model.input), bits)),
        }
        match v.output {
            OutputMode::Public => out.extend(values(model.output)),
            OutputMode::Hashed => out.push(hash(Domain::Output, &values(model.output))),
            OutputMode::Linked => out.push(link(salts.output, trace.get(model.output), bits)),
        }
        out
    }

    /// Lays out the packed weights and the parameter hash; returns the hash's cell.
    fn assign_params(
        &self,
        config: &ModelConfig,
        region: &mut Region<'_, Fr>,
        wires: &mut Wires<'_>,
        slot: &mut impl FnMut() -> (usize, usize),
    ) -> Result<Cell, Error> {
        let bits = self.layout.weight_bits;
        let params = Params::of(&self.model);
        let per = per_element(bits);
        let mut weights = Vec::with_capacity(params.weights.len());
        let mut message = Vec::new();
        for (c, chunk) in params.weights.chunks(per).enumerate() {
            let (lane, row) = chunk_slot(c, config.pack.len(), per);
            let (cells, packed, value) =
                config.pack[lane].assign_weights(region, row, chunk, bits)?;
            weights.extend(cells);
            message.push(Element::Cell(packed, value));
        }
        let n_packed = message.len();
        message.extend(
            params
                .wide
                .iter()
                .map(|&v| Element::Fresh(Value::known(fe(v)))),
        );
        let (digest, cells) = assign_hash(region, &config.hash, slot, Domain::Params, &message)?;
        wires.set_params(ParamCells {
            weights,
            wide: cells[n_packed..].to_vec(),
            index: params.index,
        });
        Ok(digest)
    }

    /// Hashes the elements of `id`, each of which has a cell (the range check gives every
    /// element of a hashed input one); a padding zero is tied to 0. With a salt (a linked
    /// boundary), the elements are first packed in the boundary-packing lanes, from chunk
    /// `*chunk` on (see [`link`]), and the salt, a free private cell, leads the message.
    #[allow(clippy::too_many_arguments)]
    fn assign_value_hash(
        &self,
        config: &ModelConfig,
        region: &mut Region<'_, Fr>,
        wires: &Wires<'_>,
        slot: &mut impl FnMut() -> (usize, usize),
        id: ValueId,
        domain: Domain,
        salt: Option<(Fr, &mut usize)>,
    ) -> Result<Cell, Error> {
        let elements = (0..self.model.value(id).len())
            .map(|i| match (wires.resolve(id, i), wires.cell(id, i)) {
                (Source::Zero, _) => Ok(Element::Zero),
                (_, Some(c)) => Ok(Element::Cell(c, wires.value(id, i))),
                (Source::Element(..), None) => Err(Error::Synthesis),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some((salt, chunk)) = salt else {
            return Ok(assign_hash(region, &config.hash, slot, domain, &elements)?.0);
        };
        let known = self.trace.is_some();
        let mut message = vec![Element::Fresh(if known {
            Value::known(salt)
        } else {
            Value::unknown()
        })];
        let bits = self.model.act_bits;
        // The lanes' gate packs `link_bits`-bit values: they must be the model's.
        if self.layout.link_bits != bits {
            return Err(Error::Synthesis);
        }
        let per = per_element(bits);
        for part in elements.chunks(per) {
            let (lane, row) = chunk_slot(*chunk, config.link.len(), per);
            *chunk += 1;
            let lane = config.link.get(lane).ok_or(Error::Synthesis)?;
            let values: Vec<_> = part.iter().map(Element::value).collect();
            let (cells, packed, value) = lane.assign_chunk(region, row, &values, bits)?;
            for (cell, element) in cells.into_iter().zip(part) {
                match element {
                    Element::Cell(canonical, _) => region.constrain_equal(cell, *canonical),
                    Element::Zero => region.constrain_constant(cell, Fr::zero())?,
                    Element::Fresh(_) => return Err(Error::Synthesis),
                }
            }
            message.push(Element::Cell(packed, value));
        }
        Ok(assign_hash(region, &config.hash, slot, domain, &message)?.0)
    }

    /// Lays out the whole model; returns the cells of the public values (an unused
    /// public input element has none).
    fn assign(
        &self,
        config: &ModelConfig,
        layouter: &mut impl Layouter<Fr>,
    ) -> Result<Vec<Option<Cell>>, Error> {
        let model = &*self.model;
        let vis = self.layout.visibility;
        let lanes = config.lanes.len();
        layouter.assign_region(
            || "model",
            |mut region| {
                let region = &mut region;
                let mut wires = Wires::new(model, self.trace.as_deref());
                // Poseidon blocks go round-robin over the hash lanes.
                let hash_lanes = config.hash.len().max(1);
                let mut block = 0usize;
                let mut slot = || {
                    let s = (block % hash_lanes, (block / hash_lanes) * BLOCK_ROWS);
                    block += 1;
                    s
                };
                let mut public = Vec::new();
                if vis.params == ParamsMode::Hashed {
                    public.push(Some(
                        self.assign_params(config, region, &mut wires, &mut slot)?,
                    ));
                }
                config.linear.init(region, 0);
                let (mut linear_row, mut lane_pos) = (0usize, 0usize);
                let mut placement = Placement::new(self.layout.horner_lanes);
                // The products checked as matrix products, by op index, and the `Mul`s
                // whose multiplies that check replaces.
                let products = if self.layout.product_lanes > 0 && vis.params != ParamsMode::Hashed
                {
                    crate::freivalds::products(model)
                } else {
                    Vec::new()
                };
                let product_at = |i: usize| {
                    products
                        .get(i)
                        .copied()
                        .flatten()
                        .filter(|_| self.layout.freivalds.contains(&i))
                };
                let replaced: Vec<usize> =
                    crate::freivalds::checked(&self.layout.freivalds, &products)
                        .map(|p| p.mul)
                        .collect();
                let banks = crate::table::banks_of(model, &self.layout);
                let mut pending = Vec::new();
                let mut next_lane = || {
                    let at = (lane_pos % lanes, lane_pos / lanes);
                    lane_pos += 1;
                    at
                };
                if input_is_range_checked(model, &vis) {
                    for i in 0..model.value(model.input).len() {
                        let (lane, row) = next_lane();
                        config.lanes[lane].assign_input_range(
                            region,
                            &mut wires,
                            model.input,
                            i,
                            row,
                        )?;
                    }
                }
                for (op_index, op) in model.ops.iter().enumerate() {
                    match op {
                        QOp::Linear(l) if product_at(op_index).is_some() => {
                            let f = config.freivalds.as_ref().ok_or(Error::Synthesis)?;
                            let product = product_at(op_index).ok_or(Error::Synthesis)?;
                            pending.push(f.assign_product_first(
                                region,
                                &mut wires,
                                model,
                                l,
                                product,
                                &mut placement,
                            )?);
                        }
                        QOp::Linear(l) if self.layout.freivalds.contains(&op_index) => {
                            let f = config.freivalds.as_ref().ok_or(Error::Synthesis)?;
                            let (next, p) = f.assign_first(
                                &config.linear,
                                region,
                                &mut wires,
                                model,
                                l,
                                op_index,
                                linear_row,
                                &mut placement,
                            )?;
                            linear_row = next;
                            pending.push(p);
                        }
                        QOp::Linear(l) => {
                            linear_row = config
                                .linear
                                .assign(region, &mut wires, model, l, op_index, linear_row)?;
                        }
                        QOp::Rescale(r) => {
                            let bits = model.act_bits;
                            for i in 0..model.value(r.output).len() {
                                let from = if !rescale_is_wide(model, r) {
                                    None
                                } else {
                                    let s1 = r.shift - (bits - 1);
                                    let (lane, row) = next_lane();
                                    let (cell, v) = config.lanes[lane].assign_rescale_high(
                                        region, &mut wires, model, r, i, s1, row,
                                    )?;
                                    Some((cell, v, bits - 1))
                                };
                                let (lane, row) = next_lane();
                                config.lanes[lane].assign_rescale(
                                    region, &mut wires, model, r, i, from, row, &banks,
                                )?;
                            }
                        }
                        QOp::Add(a) => {
                            let param = add_is_parametric(&vis, a);
                            for i in 0..model.value(a.output).len() {
                                let (lane, row) = next_lane();
                                if param {
                                    let t = config.lanes[lane].assign_param_product(
                                        region, &mut wires, a, op_index, i, row,
                                    )?;
                                    let (lane, row) = next_lane();
                                    config.lanes[lane].assign_param_sum(
                                        region, &mut wires, a, op_index, i, t, row,
                                    )?;
                                } else {
                                    config.lanes[lane].assign_add(region, &mut wires, a, i, row)?;
                                }
                            }
                        }
                        QOp::Mul(_) if replaced.contains(&op_index) => {}
                        QOp::Mul(m) => {
                            for i in 0..model.value(m.output).len() {
                                let (lane, row) = next_lane();
                                config.lanes[lane].assign_mul(region, &mut wires, m, i, row)?;
                            }
                        }
                        QOp::Reshape(_) | QOp::Rearrange(_) | QOp::Concat(_) => {}
                    }
                }
                if output_needs_zero_cell(model, &vis) {
                    let (lane, row) = next_lane();
                    let cell = region
                        .assign_advice(config.lanes[lane].in0, row, Value::known(Fr::zero()))
                        .cell();
                    wires.tie_zero(region, cell)?;
                }
                let cells = |id, n| (0..n).map(|i| wires.cell(id, i)).collect::<Vec<_>>();
                let (n_in, n_out) = (
                    model.value(model.input).len(),
                    model.value(model.output).len(),
                );
                // Boundary chunks go over the boundary-packing lanes, the input's first.
                let mut chunk = 0usize;
                let mut hashed = |id, domain, salt: Option<Fr>| {
                    let salt = salt.map(|s| (s, &mut chunk));
                    self.assign_value_hash(config, region, &wires, &mut slot, id, domain, salt)
                        .map(Some)
                };
                match vis.input {
                    InputMode::Public => public.extend(cells(model.input, n_in)),
                    InputMode::Private => {}
                    InputMode::Hashed => public.push(hashed(model.input, Domain::Input, None)?),
                    InputMode::Linked => public.push(hashed(
                        model.input,
                        Domain::Boundary,
                        Some(self.salts.input),
                    )?),
                }
                match vis.output {
                    OutputMode::Public => {
                        let out = cells(model.output, n_out);
                        // Every output element is computed, so it has a cell.
                        if out.iter().any(Option::is_none) {
                            return Err(Error::Synthesis);
                        }
                        public.extend(out);
                    }
                    OutputMode::Hashed => public.push(hashed(model.output, Domain::Output, None)?),
                    OutputMode::Linked => public.push(hashed(
                        model.output,
                        Domain::Boundary,
                        Some(self.salts.output),
                    )?),
                }
                // Every first-phase cell is written: commit them, draw the challenge,
                // and combine the checked ops' rows under it.
                if let Some(f) = &config.freivalds {
                    region.next_phase();
                    let mut inner_row = 0;
                    for p in &pending {
                        f.assign_second(region, p, &mut inner_row)?;
                    }
                }
                Ok(public)
            },
        )
    }
}

impl Circuit<Fr> for ModelCircuit {
    type Config = ModelConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = Layout;

    fn without_witnesses(&self) -> Self {
        ModelCircuit::new(self.model.clone(), self.layout.clone())
    }

    fn params(&self) -> Layout {
        self.layout.clone()
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, layout: Layout) -> ModelConfig {
        let table = TableConfig::configure(meta, layout.banks);
        let hashed = layout.visibility.params == ParamsMode::Hashed;
        let linear =
            LinearConfig::configure(meta, layout.x_cols.max(1), layout.acc_cols.max(1), hashed);
        let freivalds = (layout.horner_lanes > 0).then(|| {
            FreivaldsConfig::configure(meta, &linear, layout.horner_lanes, layout.product_lanes > 0)
        });
        let lanes = (0..layout.lanes.max(1))
            .map(|_| LaneConfig::configure(meta, &table, layout.limb_bits))
            .collect();
        let weight_range = if layout.limb_bits > 0 {
            PackRange::Limbs(&table)
        } else {
            PackRange::Table(&table)
        };
        let pack = (0..layout.pack_lanes)
            .map(|_| PackConfig::configure(meta, weight_range, layout.weight_bits))
            .collect();
        let link = (0..layout.link_lanes)
            .map(|_| PackConfig::configure(meta, PackRange::None, layout.link_bits))
            .collect();
        let hash = (0..layout.hash_lanes)
            .map(|_| PoseidonConfig::configure(meta))
            .collect();
        let instance = meta.instance_column();
        meta.enable_equality(instance);
        // Holds the constant 0 that zero-padding cells are tied to.
        let constants = meta.fixed_column();
        meta.enable_constant(constants);
        ModelConfig {
            linear,
            freivalds,
            lanes,
            table,
            pack,
            link,
            hash,
            instance,
        }
    }

    fn configure(meta: &mut ConstraintSystem<Fr>) -> ModelConfig {
        Self::configure_with_params(meta, Layout::default())
    }

    fn synthesize(
        &self,
        config: ModelConfig,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        config
            .table
            .load(&mut layouter, &self.model, &self.layout)?;
        let public = self.assign(&config, &mut layouter)?;
        for (row, cell) in public.into_iter().enumerate() {
            if let Some(cell) = cell {
                layouter.constrain_instance(cell, config.instance, row);
            }
        }
        Ok(())
    }
}
