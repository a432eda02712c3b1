//! `compile --target`: the activation width chosen from the fidelity it gives on the
//! calibration data, instead of a fixed `--bits`.

use super::*;

/// What `--target` optimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The narrowest activations (smallest lookup table, so smallest `k`) whose output
    /// is [`acceptable`].
    Size,
    /// The activations with the smallest output error; a wider choice must improve it by
    /// more than 10% to be taken.
    Accuracy,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "size" => Ok(Target::Size),
            "accuracy" => Ok(Target::Accuracy),
            _ => Err(format!("`{s}` is not one of: accuracy, size")),
        }
    }
}

/// The activation widths `--target` tries.
pub const TARGET_BITS: std::ops::RangeInclusive<u32> = 8..=16;

/// Good enough for `--target size`: the argmax of every class-vector sample agrees with
/// the float model, and the largest error is at most 1% of the output's range.
pub fn acceptable(f: &Fidelity) -> bool {
    f.argmax_agree.is_none_or(|a| a == f.samples)
        && f.max_abs_error <= 0.01 * f.output_max_abs.max(f64::MIN_POSITIVE)
}

/// One width tried, and how it did (`None`: it did not quantize, e.g. a rescale too wide).
pub type Trial = (u32, Result<Fidelity, String>);

/// Quantizes `graph` at every width of [`TARGET_BITS`] (weights at `weight_bits`) and
/// picks one for `target`. Returns the chosen model, its fidelity and every trial.
pub fn quantize_for_target(
    graph: &Graph,
    cal: &Calibration,
    samples: &[Vec<f32>],
    weight_bits: u32,
    target: Target,
) -> Result<(QModel, Fidelity, Vec<Trial>), CompileError> {
    let mut trials = Vec::new();
    let mut models = Vec::new();
    for bits in TARGET_BITS {
        let cfg = QuantConfig {
            act_bits: bits,
            weight_bits,
            ..QuantConfig::default()
        };
        let tried = quantize(graph, cal, cfg).and_then(|q| Ok((fidelity(graph, &q, samples)?, q)));
        match tried {
            Ok((f, q)) => {
                trials.push((bits, Ok(f.clone())));
                models.push((bits, q, f));
            }
            Err(e) => trials.push((bits, Err(e.to_string()))),
        }
    }
    let chosen = match target {
        Target::Size => models.into_iter().find(|(_, _, f)| acceptable(f)),
        Target::Accuracy => models.into_iter().reduce(|best, next| {
            if next.2.max_abs_error < 0.9 * best.2.max_abs_error {
                next
            } else {
                best
            }
        }),
    };
    match chosen {
        Some((_, q, f)) => Ok((q, f, trials)),
        None => {
            let tried: Vec<String> = trials
                .iter()
                .map(|(b, r)| match r {
                    Ok(f) => format!("{b} bits: {f}"),
                    Err(e) => format!("{b} bits: {e}"),
                })
                .collect();
            Err(CompileError::Quantize {
                node: graph.name.clone(),
                reason: format!(
                    "no activation width in {}..={} meets --target {target:?} \
                     (argmax agreement and max error ≤ 1% of the output range); tried: {}",
                    TARGET_BITS.start(),
                    TARGET_BITS.end(),
                    tried.join("; ")
                ),
            })
        }
    }
}
