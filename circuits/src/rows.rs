//! How many rows each section of the model circuit takes: the one place that says when an
//! element takes a second lane row, read by both the planner ([`crate::layout`]) and
//! synthesis ([`crate::model`]), so a plan is exactly what synthesis lays out (the tests
//! check planned rows against synthesized rows on every shared model).

use zkinfer_qir::{Add, AddOperand, QModel, QOp, Rescale, ValueId};

use crate::freivalds::{checked, matvec_rows, Product};
use crate::layout::{InputMode, OutputMode, ParamsMode, Visibility};
use crate::linear::linear_rows;
use crate::params::{chunk_slot, per_element, Params};
use crate::poseidon::blocks;
use crate::wires::{Aliases, Source};

/// A rescale by `2^B` or more (`B` the activation width) takes two lane rows an element:
/// the first divides by `2^(shift − B + 1)`, the second by `2^(B − 1)` and bounds it.
pub fn rescale_is_wide(model: &QModel, r: &Rescale) -> bool {
    r.shift >= model.act_bits
}

/// With hashed weights an addition of a constant is a product row and a sum row, its
/// multiplier and constant copied from the hashed parameters.
pub fn add_is_parametric(visibility: &Visibility, a: &Add) -> bool {
    visibility.params == ParamsMode::Hashed && matches!(a.b, AddOperand::Constant(_))
}

/// A private, hashed or linked input is range-checked in the circuit, one lane row an
/// element; so is a public one that the output shows as it is (an output element that is
/// an input element: a model of shape ops only), so that those elements have cells for the
/// public output to be bound to.
pub fn input_is_range_checked(model: &QModel, visibility: &Visibility) -> bool {
    visibility.input != InputMode::Public || output_shows_input(model)
}

/// Whether the output is (part of) the input, through shape ops only. Decided on values,
/// not elements: a slice of the input that drops the elements the output shows counts.
pub fn output_shows_input(model: &QModel) -> bool {
    let mut sources: Vec<Vec<ValueId>> = vec![Vec::new(); model.values.len()];
    for op in &model.ops {
        match op {
            QOp::Reshape(r) => sources[r.output.0].push(r.input),
            QOp::Rearrange(r) => sources[r.output.0].push(r.input),
            QOp::Concat(c) => sources[c.output.0].extend(&c.inputs),
            _ => {}
        }
    }
    let mut todo = vec![model.output];
    let mut seen = vec![false; model.values.len()];
    while let Some(v) = todo.pop() {
        if v == model.input {
            return true;
        }
        if !std::mem::replace(&mut seen[v.0], true) {
            todo.extend(&sources[v.0]);
        }
    }
    false
}

/// Lane rows one element of `op` takes.
pub fn lane_rows_per_element(model: &QModel, visibility: &Visibility, op: &QOp) -> usize {
    match op {
        QOp::Rescale(r) => 1 + usize::from(rescale_is_wide(model, r)),
        QOp::Add(a) => 1 + usize::from(add_is_parametric(visibility, a)),
        QOp::Mul(_) => 1,
        QOp::Linear(_) | QOp::Reshape(_) | QOp::Rearrange(_) | QOp::Concat(_) => 0,
    }
}

/// Whether a public output shows a padding zero (a `Trilu` or zero `Pad` of the input):
/// the instance is bound to a zero cell, so one lane row holds it.
pub fn output_needs_zero_cell(model: &QModel, visibility: &Visibility) -> bool {
    visibility.output == OutputMode::Public && {
        let aliases = Aliases::new(model);
        (0..model.value(model.output).len())
            .any(|i| aliases.resolve(model.output, i) == Source::Zero)
    }
}

/// Rows the element-wise lanes need in all (before they are spread over the lanes).
pub fn elementwise_elements(model: &QModel, visibility: &Visibility) -> usize {
    let input = if input_is_range_checked(model, visibility) {
        model.value(model.input).len()
    } else {
        0
    };
    input
        + usize::from(output_needs_zero_cell(model, visibility))
        + model
            .ops
            .iter()
            .map(|op| model.value(op.output()).len() * lane_rows_per_element(model, visibility, op))
            .sum::<usize>()
}

/// The element-wise rows the products among the ops `freivalds` checks do not take: their
/// `Mul`s' (one lane row an element).
pub fn product_savings(freivalds: &[usize], products: &[Option<Product>]) -> usize {
    checked(freivalds, products).map(|p| p.multiplies()).sum()
}

/// Rows of the linear section: every linear op's blocks (one input row's for the ops
/// `freivalds` checks, none for the products among them), and the trailing row the last
/// block's gate reads.
pub fn linear_section_rows(
    model: &QModel,
    x_cols: usize,
    acc_cols: usize,
    freivalds: &[usize],
    products: &[Option<Product>],
) -> usize {
    model
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| match op {
            QOp::Linear(_)
                if freivalds.contains(&i) && matches!(products.get(i), Some(Some(_))) =>
            {
                0
            }
            QOp::Linear(l) if freivalds.contains(&i) => matvec_rows(l, x_cols, acc_cols),
            QOp::Linear(l) => linear_rows(l, model, x_cols, acc_cols),
            _ => 0,
        })
        .sum::<usize>()
        + 1
}

/// Poseidon blocks of every hash the statement takes, and the number of weights the
/// packing lanes pack.
pub fn hash_work(model: &QModel, visibility: &Visibility, weight_bits: u32) -> (usize, usize) {
    let mut hash_blocks = 0;
    let mut weights = 0;
    if visibility.params == ParamsMode::Hashed {
        let p = Params::of(model);
        weights = p.weights.len();
        hash_blocks += blocks(weights.div_ceil(per_element(weight_bits)) + p.wide.len());
    }
    // A linked boundary's message is its salt and its packed chunks.
    let per = per_element(model.act_bits);
    match visibility.input {
        InputMode::Hashed => hash_blocks += blocks(model.value(model.input).len()),
        InputMode::Linked => {
            hash_blocks += blocks(1 + model.value(model.input).len().div_ceil(per))
        }
        InputMode::Public | InputMode::Private => {}
    }
    match visibility.output {
        OutputMode::Hashed => hash_blocks += blocks(model.value(model.output).len()),
        OutputMode::Linked => {
            hash_blocks += blocks(1 + model.value(model.output).len().div_ceil(per))
        }
        OutputMode::Public => {}
    }
    (hash_blocks, weights)
}

/// The lengths of the chunks the boundary-packing lanes pack, in order: the linked
/// input's, then the linked output's, `⌊252 / act_bits⌋` values a chunk.
fn link_chunks(model: &QModel, visibility: &Visibility) -> Vec<usize> {
    let per = per_element(model.act_bits);
    let chunks = |n: usize| (0..n.div_ceil(per)).map(move |c| per.min(n - c * per));
    let input = (visibility.input == InputMode::Linked).then(|| model.value(model.input).len());
    let output = (visibility.output == OutputMode::Linked).then(|| model.value(model.output).len());
    input.into_iter().chain(output).flat_map(chunks).collect()
}

/// Rows of the fullest boundary-packing lane (chunks placed by [`chunk_slot`]).
pub fn link_rows(model: &QModel, visibility: &Visibility, lanes: usize) -> usize {
    let per = per_element(model.act_bits);
    link_chunks(model, visibility)
        .iter()
        .enumerate()
        .map(|(c, len)| chunk_slot(c, lanes, per).1 + len)
        .max()
        .unwrap_or(0)
}

/// Rows of the fullest packing lane: `weights` packed `per` a chunk, one weight a row,
/// chunk `c` at row `(c / lanes) · per` of lane `c mod lanes` (the last chunk may be
/// short).
pub fn pack_rows(weights: usize, per: usize, lanes: usize) -> usize {
    let (per, lanes) = (per.max(1), lanes.max(1));
    let chunks = weights.div_ceil(per);
    (chunks.saturating_sub(lanes)..chunks)
        .map(|c| chunk_slot(c, lanes, per).1 + per.min(weights - c * per))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::pack_rows;

    #[test]
    fn packing_lanes_end_at_their_last_weight() {
        assert_eq!(pack_rows(160, 21, 1), 7 * 21 + 13);
        // Chunks 0 and 2 in lane 0 (the last one 3 weights), chunk 1 in lane 1.
        assert_eq!(pack_rows(45, 21, 2), 21 + 3);
        assert_eq!(pack_rows(42, 21, 4), 21);
        assert_eq!(pack_rows(0, 21, 4), 0);
    }
}
