//! The segment planner: cuts a model into consecutive segments whose circuits the cost
//! model ([`crate::cost`]) predicts to set up and prove within a memory budget.
//!
//! Cuts are taken only where every value crossing them is bounded
//! ([`QModel::bounded_cuts`]), so each segment's input boundary can be range-checked and
//! linked by a salted hash (`linked` in [`Visibility`]). A model that fits stays one
//! circuit, exactly as without segments. Otherwise each segment is grown greedily to the
//! last cut at which its best layout still fits (a binary search over the cuts: a longer
//! segment never needs fewer rows).

use zkinfer_qir::{QModel, Segment};

use crate::layout::{Arguments, InputMode, OutputMode, Visibility};
use crate::plan::{plan_layout, Plan};
use crate::CircuitError;

/// One segment as planned: its ops and boundaries, the model its circuit proves, and the
/// circuit's layout.
#[derive(Clone, Debug)]
pub struct PlannedSegment {
    pub segment: Segment,
    pub model: QModel,
    pub plan: Plan,
}

/// The visibility of segment `i` of `n`: the statement's at the model's ends, linked at
/// every cut.
pub fn segment_visibility(statement: Visibility, i: usize, n: usize) -> Visibility {
    ends(statement, i == 0, i + 1 == n)
}

fn ends(statement: Visibility, first: bool, last: bool) -> Visibility {
    Visibility {
        params: statement.params,
        input: if first {
            statement.input
        } else {
            InputMode::Linked
        },
        output: if last {
            statement.output
        } else {
            OutputMode::Linked
        },
    }
}

/// Lays out the segments between `cuts` (bounded cuts, increasing) with `statement`'s
/// visibility at the ends, each within `budget_mb` when given.
pub fn plan_cuts(
    model: &QModel,
    statement: Visibility,
    cuts: &[usize],
    budget_mb: Option<f64>,
    arguments: Arguments,
) -> Result<Vec<PlannedSegment>, CircuitError> {
    let segments = model.split(cuts)?;
    let n = segments.len();
    segments
        .into_iter()
        .enumerate()
        .map(|(i, segment)| {
            let vis = segment_visibility(statement, i, n);
            plan_one(model, segment, vis, budget_mb, arguments)
        })
        .collect()
}

/// The segment of `ops`, laid out with `statement`'s ends where it has the model's.
fn plan_range(
    model: &QModel,
    statement: Visibility,
    ops: std::ops::Range<usize>,
    budget_mb: Option<f64>,
    arguments: Arguments,
) -> Result<PlannedSegment, CircuitError> {
    let vis = ends(statement, ops.start == 0, ops.end == model.ops.len());
    let segment = model.segment(ops)?;
    plan_one(model, segment, vis, budget_mb, arguments)
}

fn plan_one(
    model: &QModel,
    segment: Segment,
    vis: Visibility,
    budget_mb: Option<f64>,
    arguments: Arguments,
) -> Result<PlannedSegment, CircuitError> {
    let whole = segment.ops.start == 0 && segment.ops.end == model.ops.len();
    let sub = if whole {
        model.clone()
    } else {
        model.segment_model(&segment)?
    };
    let plan = match plan_layout(&sub, vis, budget_mb, arguments) {
        Err(CircuitError::OverMemory { budget, least }) if !whole => {
            return Err(CircuitError::SegmentOverMemory {
                ops: format!("{:?}", segment.ops),
                first: model
                    .value(model.ops[segment.ops.start].output())
                    .name
                    .clone(),
                budget,
                least,
            })
        }
        r => r?.0,
    };
    Ok(PlannedSegment {
        segment,
        model: sub,
        plan,
    })
}

/// Cuts `model` into the fewest segments (at least `min_segments`, where the model has
/// enough bounded cuts) that fit `budget_mb`; returns the model the segments are of. A
/// linear layer too large for the budget on its own is split into parts
/// ([`QModel::split_linear`]) until its parts fit, so that model computes the same but
/// may have more ops. With `min_segments` above 1 the cuts first split the work about
/// evenly (for parallel provers); any piece over the budget is then cut further.
pub fn plan_segments(
    model: &QModel,
    statement: Visibility,
    budget_mb: f64,
    min_segments: usize,
    arguments: Arguments,
) -> Result<(QModel, Vec<PlannedSegment>), CircuitError> {
    if statement.is_linked() {
        return Err(CircuitError::Model(zkinfer_qir::QirError::Malformed {
            op: 0,
            kind: "model",
            reason: "`linked` is a segment boundary, set by the planner, not a statement".into(),
        }));
    }
    model.validate()?;
    let mut model = model.clone();
    // Where the planner was stuck and the least memory it needed there, to stop when
    // splitting does not help (the memory is not the linear layer's).
    let mut stuck: Option<(usize, f64)> = None;
    // The cuts before where the planner was stuck: a split there leaves them as they are
    // (with `min_segments` above 1 the even shares move, so the planner starts over).
    let mut done = Vec::new();
    loop {
        let (ops, error) =
            match greedy_cuts(&model, statement, budget_mb, min_segments, &done, arguments)? {
                Ok(cuts) => {
                    let planned = plan_cuts(&model, statement, &cuts, Some(budget_mb), arguments)?;
                    return Ok((model, planned));
                }
                Err((cuts, stuck_at)) => {
                    if min_segments <= 1 {
                        done = cuts;
                    }
                    stuck_at
                }
            };
        let least = match &error {
            CircuitError::SegmentOverMemory { least, .. }
            | CircuitError::OverMemory { least, .. } => *least,
            _ => return Err(error),
        };
        if stuck.is_some_and(|(start, before)| start == ops.start && least > 0.9 * before) {
            return Err(error);
        }
        stuck = Some((ops.start, least));
        let linear_macs = |i: usize| match &model.ops[i] {
            zkinfer_qir::QOp::Linear(l) => l.rows(&model) * l.in_features * l.out_features,
            _ => 0,
        };
        let Some(op) = ops
            .clone()
            .filter(|&i| model.is_splittable_linear(i))
            .max_by_key(|&i| linear_macs(i))
        else {
            return Err(error);
        };
        let parts = ((least / budget_mb).ceil() as usize)
            .next_power_of_two()
            .max(2);
        model = model.split_linear(op, parts)?;
    }
}

/// The greedy cuts of `model` within `budget_mb`, continuing after the cuts `done`; or
/// the cuts made and the first range of ops that does not fit even as the shortest
/// segment from where it starts, with its error.
#[allow(clippy::type_complexity)]
fn greedy_cuts(
    model: &QModel,
    statement: Visibility,
    budget_mb: f64,
    min_segments: usize,
    done: &[usize],
    arguments: Arguments,
) -> Result<Result<Vec<usize>, (Vec<usize>, (std::ops::Range<usize>, CircuitError))>, CircuitError>
{
    let bounded = model.bounded_cuts();
    let n = model.ops.len();
    let mut pieces = vec![0];
    if min_segments > 1 {
        pieces.extend(even_cuts(model, &bounded, min_segments));
    }
    pieces.push(n);
    let mut cuts: Vec<usize> = done.to_vec();
    let resume = done.last().copied().unwrap_or(0);
    for piece in pieces.windows(2) {
        let (mut start, to) = (piece[0].max(resume), piece[1]);
        while start < to {
            // Candidate ends: the bounded cuts in (start, to), then `to`.
            let mut options: Vec<usize> = bounded
                .iter()
                .copied()
                .filter(|&c| c > start && c < to)
                .collect();
            options.push(to);
            let attempt =
                |end: usize| plan_range(model, statement, start..end, Some(budget_mb), arguments);
            let over = |e: &CircuitError| {
                matches!(
                    e,
                    CircuitError::OverMemory { .. }
                        | CircuitError::SegmentOverMemory { .. }
                        | CircuitError::TooLarge { .. }
                )
            };
            // The last end that fits (a binary search: a longer segment never fits better).
            let (mut lo, mut hi) = (0usize, options.len());
            while lo < hi {
                let mid = (lo + hi) / 2;
                match attempt(options[mid]) {
                    Ok(_) => lo = mid + 1,
                    Err(e) if over(&e) => hi = mid,
                    Err(e) => return Err(e),
                }
            }
            if lo == 0 {
                // Not even the shortest segment from here fits: its error says by how much.
                let end = options[0];
                if let Err(e) = attempt(end) {
                    return Ok(Err((cuts, (start..end, e))));
                }
            }
            let end = options[lo.max(1) - 1];
            if end < n {
                cuts.push(end);
            }
            start = end;
        }
    }
    Ok(Ok(cuts))
}

/// `parts − 1` bounded cuts nearest to equal shares of the model's work (its
/// multiply-accumulates plus its element-wise outputs), distinct and increasing.
fn even_cuts(model: &QModel, bounded: &[usize], parts: usize) -> Vec<usize> {
    let work: Vec<usize> = model
        .ops
        .iter()
        .map(|op| match op {
            zkinfer_qir::QOp::Linear(l) => l.rows(model) * l.in_features * l.out_features,
            op => model.value(op.output()).len(),
        })
        .collect();
    let total: usize = work.iter().sum::<usize>().max(1);
    // before[c] = work of ops 0..c.
    let mut before = vec![0usize; work.len() + 1];
    for (i, w) in work.iter().enumerate() {
        before[i + 1] = before[i] + w;
    }
    let mut cuts: Vec<usize> = Vec::new();
    for j in 1..parts {
        let target = total * j / parts;
        let best = bounded
            .iter()
            .copied()
            .filter(|&c| cuts.last().is_none_or(|&l| c > l))
            .min_by_key(|&c| before[c].abs_diff(target));
        if let Some(c) = best {
            cuts.push(c);
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    // Test code: a panic is the failure report.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tests::residual_model;

    #[test]
    fn a_model_that_fits_stays_whole() {
        let m = residual_model();
        let (_, s) =
            plan_segments(&m, Visibility::default(), 1e9, 1, Arguments::default()).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].model, m);
        assert_eq!(
            s[0].plan,
            plan_layout(&m, Visibility::default(), None, Arguments::default())
                .unwrap()
                .0
        );
    }

    #[test]
    fn segments_fit_the_budget_and_link_at_bounded_cuts() {
        let m = residual_model();
        let whole = plan_layout(&m, Visibility::default(), None, Arguments::default())
            .unwrap()
            .0;
        let (_, forced) =
            plan_segments(&m, Visibility::default(), 1e9, 3, Arguments::default()).unwrap();
        assert!(forced.len() >= 3, "{} segments", forced.len());
        for (i, s) in forced.iter().enumerate() {
            let vis = s.plan.layout.visibility;
            assert_eq!(vis.input == InputMode::Linked, i > 0);
            assert_eq!(vis.output == OutputMode::Linked, i + 1 < forced.len());
            assert!(s.segment.ops.start == 0 || m.bounded_cuts().contains(&s.segment.ops.start));
        }
        // A budget below the whole circuit's prediction cuts it.
        let budget = whole.predicted.peak_mb - 1.0;
        match plan_segments(&m, Visibility::default(), budget, 1, Arguments::default()) {
            Ok((_, s)) => {
                assert!(s.len() > 1);
                assert!(s.iter().all(|s| s.plan.predicted.peak_mb <= budget));
            }
            Err(e) => assert!(matches!(e, CircuitError::SegmentOverMemory { .. }), "{e}"),
        }
        // A budget nothing fits names the smallest prediction.
        assert!(matches!(
            plan_segments(&m, Visibility::default(), 1.0, 1, Arguments::default()),
            Err(CircuitError::SegmentOverMemory { .. })
        ));
    }
}
