//! The model circuit: strings the chips together for a [`QModel`].
//!
//! Two sections share rows from 0: the linear section (blocks of [`LinearConfig`]) and
//! the element-wise lanes (one element per lane row). Data moves between them only by
//! copy constraints, so row order is free. The instance column holds the quantized
//! input followed by the quantized output.

use std::sync::Arc;

use halo2_proofs::circuit::{Cell, Layouter, SimpleFloorPlanner};
use halo2_proofs::halo2curves::bn256::Fr;
use halo2_proofs::plonk::{Circuit, Column, ConstraintSystem, Error, Instance};
use zkinfer_qir::{QModel, QOp, Trace};

use crate::elementwise::LaneConfig;
use crate::fe;
use crate::layout::Layout;
use crate::linear::LinearConfig;
use crate::table::TableConfig;
use crate::wires::Wires;

/// Canonical cells of the input and output elements (an unused input element has none).
type PublicCells = (Vec<Option<Cell>>, Vec<Option<Cell>>);

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub linear: LinearConfig,
    pub lanes: Vec<LaneConfig>,
    pub table: TableConfig,
    pub instance: Column<Instance>,
}

/// A [`QModel`] as a halo2 circuit, with the witness when proving.
#[derive(Clone, Debug)]
pub struct ModelCircuit {
    pub model: Arc<QModel>,
    pub layout: Layout,
    pub trace: Option<Arc<Trace>>,
}

impl ModelCircuit {
    /// The circuit for key generation (no witness).
    pub fn new(model: Arc<QModel>, layout: Layout) -> Self {
        ModelCircuit {
            model,
            layout,
            trace: None,
        }
    }

    /// The circuit for proving: `trace` is the integer interpreter's run on the input.
    pub fn with_trace(model: Arc<QModel>, layout: Layout, trace: Arc<Trace>) -> Self {
        ModelCircuit {
            model,
            layout,
            trace: Some(trace),
        }
    }

    /// The public instance column: quantized input, then quantized output.
    pub fn instances(model: &QModel, trace: &Trace) -> Vec<Fr> {
        trace
            .get(model.input)
            .iter()
            .chain(trace.get(model.output))
            .map(|&v| fe(v))
            .collect()
    }

    fn assign(
        &self,
        config: &ModelConfig,
        layouter: &mut impl Layouter<Fr>,
    ) -> Result<PublicCells, Error> {
        let model = &*self.model;
        let lanes = config.lanes.len();
        layouter.assign_region(
            || "model",
            |mut region| {
                let mut wires = Wires::new(model, self.trace.as_deref());
                config.linear.init(&mut region, 0);
                let (mut linear_row, mut lane_pos) = (0usize, 0usize);
                for op in &model.ops {
                    match op {
                        QOp::Linear(l) => {
                            linear_row = config.linear.assign(
                                &mut region,
                                &mut wires,
                                model,
                                l,
                                linear_row,
                            )?;
                        }
                        QOp::Rescale(r) => {
                            let bits = model.act_bits;
                            for i in 0..model.value(r.output).len() {
                                let lane = &config.lanes[lane_pos % lanes];
                                let from = if r.shift < bits {
                                    None
                                } else {
                                    let s1 = r.shift - (bits - 1);
                                    let row = lane_pos / lanes;
                                    let (cell, v) = lane.assign_rescale_high(
                                        &mut region,
                                        &mut wires,
                                        model,
                                        r,
                                        i,
                                        s1,
                                        row,
                                    )?;
                                    lane_pos += 1;
                                    Some((cell, v, bits - 1))
                                };
                                let lane = &config.lanes[lane_pos % lanes];
                                lane.assign_rescale(
                                    &mut region,
                                    &mut wires,
                                    model,
                                    r,
                                    i,
                                    from,
                                    lane_pos / lanes,
                                )?;
                                lane_pos += 1;
                            }
                        }
                        QOp::Add(a) => {
                            for i in 0..model.value(a.output).len() {
                                let lane = &config.lanes[lane_pos % lanes];
                                lane.assign_add(&mut region, &mut wires, a, i, lane_pos / lanes)?;
                                lane_pos += 1;
                            }
                        }
                        QOp::Mul(m) => {
                            for i in 0..model.value(m.output).len() {
                                let lane = &config.lanes[lane_pos % lanes];
                                lane.assign_mul(&mut region, &mut wires, m, i, lane_pos / lanes)?;
                                lane_pos += 1;
                            }
                        }
                        QOp::Reshape(_) | QOp::Rearrange(_) => {}
                    }
                }
                let cells = |id, n| (0..n).map(|i| wires.cell(id, i)).collect::<Vec<_>>();
                Ok((
                    cells(model.input, model.value(model.input).len()),
                    cells(model.output, model.value(model.output).len()),
                ))
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
        let table = TableConfig::configure(meta);
        let linear = LinearConfig::configure(meta, layout.x_cols.max(1), layout.acc_cols.max(1));
        let lanes = (0..layout.lanes.max(1))
            .map(|_| LaneConfig::configure(meta, &table))
            .collect();
        let instance = meta.instance_column();
        meta.enable_equality(instance);
        // Holds the constant 0 that zero-padding cells are tied to.
        let constants = meta.fixed_column();
        meta.enable_constant(constants);
        ModelConfig {
            linear,
            lanes,
            table,
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
        config.table.load(&mut layouter, &self.model)?;
        let (inputs, outputs) = self.assign(&config, &mut layouter)?;
        let n_in = inputs.len();
        for (row, cell) in inputs.into_iter().enumerate() {
            if let Some(cell) = cell {
                layouter.constrain_instance(cell, config.instance, row);
            }
        }
        for (j, cell) in outputs.into_iter().enumerate() {
            let cell = cell.ok_or(Error::Synthesis)?;
            layouter.constrain_instance(cell, config.instance, n_in + j);
        }
        Ok(())
    }
}
