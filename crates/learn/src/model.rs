//! Models: what a model spec means, its parameters as named candle variables in a fixed order, the forward
//! pass, the flat parameter vector that federated rounds exchange, and safetensors weight files.
//!
//! Three architectures, all classifiers over a row of features:
//! - `softmax`: multinomial logistic regression, one linear layer;
//! - `mlp`: linear layers with ReLU between them;
//! - `cnn`: for square single-channel images (8×8 digits, 28×28 MNIST): two 3×3 convolutions (padding 1),
//!   each followed by ReLU and 2×2 max-pooling, then a linear layer.
//!
//! Parameters are initialised from a seed (uniform in ±1/√fan-in for weights, zero for biases), so every
//! federated client and the aggregator start from the same model, and a run replays exactly.

use crate::data::{Dataset, Standardizer};
use crate::error::{LearnError, Result};
use crate::limits;
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Conv2d, Conv2dConfig, Linear};
use rand::RngExt;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Which network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    /// Multinomial logistic regression.
    Softmax,
    /// A multi-layer perceptron with these hidden widths.
    Mlp {
        /// Width of each hidden layer.
        hidden: Vec<usize>,
    },
    /// A small CNN for `side × side` single-channel images (features are the pixels, row-major).
    Cnn {
        /// Image side in pixels; a multiple of 4.
        side: usize,
        /// Channels of the two convolutions.
        channels: [usize; 2],
    },
}

impl Architecture {
    /// The default architecture for a model name on the command line: `softmax`, `mlp` (one hidden layer
    /// of 64) or `cnn` (8 and 16 channels over images of side √features).
    ///
    /// # Errors
    ///
    /// An unknown name.
    pub fn named(name: &str, features: usize) -> Result<Self> {
        match name {
            "softmax" => Ok(Self::Softmax),
            "mlp" => Ok(Self::Mlp { hidden: vec![64] }),
            "cnn" => Ok(Self::Cnn {
                side: features.isqrt(),
                channels: [8, 16],
            }),
            other => Err(LearnError::invalid(
                "model",
                format!("unknown model {other:?}; use softmax, mlp or cnn"),
            )),
        }
    }
}

/// A model's shape: architecture, input features and classes. Everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The network.
    pub architecture: Architecture,
    /// Input features per row.
    pub features: usize,
    /// Output classes.
    pub classes: usize,
}

impl ModelSpec {
    /// Checks the spec against the limits and its own consistency.
    ///
    /// # Errors
    ///
    /// Sizes out of range, or a CNN whose image does not match the features.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(LearnError::invalid("model spec", message));
        if self.features == 0 || self.features > limits::FEATURES_MAX {
            return invalid(format!(
                "{} input features; between 1 and {} are supported",
                self.features,
                limits::FEATURES_MAX
            ));
        }
        if self.classes < 2 || self.classes > limits::CLASSES_MAX {
            return invalid(format!(
                "{} classes; between 2 and {} are supported",
                self.classes,
                limits::CLASSES_MAX
            ));
        }
        match &self.architecture {
            Architecture::Softmax => {}
            Architecture::Mlp { hidden } => {
                if hidden.len() > limits::MLP_HIDDEN_LAYERS_MAX {
                    return invalid(format!(
                        "{} hidden layers; at most {} are supported",
                        hidden.len(),
                        limits::MLP_HIDDEN_LAYERS_MAX
                    ));
                }
                if let Some(width) = hidden
                    .iter()
                    .find(|&&width| width == 0 || width > limits::LAYER_WIDTH_MAX)
                {
                    return invalid(format!(
                        "a hidden layer of width {width}; widths go from 1 to {}",
                        limits::LAYER_WIDTH_MAX
                    ));
                }
            }
            Architecture::Cnn { side, channels } => {
                if side.checked_mul(*side) != Some(self.features) || side % 4 != 0 || *side == 0 {
                    return invalid(format!(
                        "a CNN over {side}×{side} images needs {} features and a side that is a \
                         multiple of 4; the data has {} features",
                        side.saturating_mul(*side),
                        self.features
                    ));
                }
                if let Some(count) = channels
                    .iter()
                    .find(|&&count| count == 0 || count > limits::LAYER_WIDTH_MAX)
                {
                    return invalid(format!(
                        "{count} channels; between 1 and {} are supported",
                        limits::LAYER_WIDTH_MAX
                    ));
                }
            }
        }
        let count = self
            .layer_shapes()
            .iter()
            .try_fold(0_usize, |total, layer| {
                total.checked_add(layer.parameter_count())
            });
        match count {
            Some(count) if count <= limits::MODEL_PARAMETERS_MAX => Ok(()),
            _ => invalid(format!(
                "the model would have more than {} parameters",
                limits::MODEL_PARAMETERS_MAX
            )),
        }
    }

    /// Checks that the spec fits a dataset.
    ///
    /// # Errors
    ///
    /// A different number of features or classes.
    pub fn check_data(&self, data: &Dataset) -> Result<()> {
        if data.feature_count() != self.features || data.classes().len() != self.classes {
            return Err(LearnError::invalid(
                "model spec",
                format!(
                    "the model takes {} features and {} classes; the data has {} features and {} \
                     classes",
                    self.features,
                    self.classes,
                    data.feature_count(),
                    data.classes().len()
                ),
            ));
        }
        Ok(())
    }

    fn layer_shapes(&self) -> Vec<Layer> {
        match &self.architecture {
            Architecture::Softmax => vec![Layer::Linear {
                inputs: self.features,
                outputs: self.classes,
            }],
            Architecture::Mlp { hidden } => {
                let mut layers = Vec::new();
                let mut inputs = self.features;
                for &width in hidden {
                    layers.push(Layer::Linear {
                        inputs,
                        outputs: width,
                    });
                    inputs = width;
                }
                layers.push(Layer::Linear {
                    inputs,
                    outputs: self.classes,
                });
                layers
            }
            Architecture::Cnn { side, channels } => vec![
                Layer::Conv {
                    inputs: 1,
                    outputs: channels[0],
                },
                Layer::Conv {
                    inputs: channels[0],
                    outputs: channels[1],
                },
                Layer::Linear {
                    inputs: channels[1] * (side / 4) * (side / 4),
                    outputs: self.classes,
                },
            ],
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Layer {
    Linear { inputs: usize, outputs: usize },
    Conv { inputs: usize, outputs: usize },
}

/// Kernel side of the CNN's convolutions.
const KERNEL: usize = 3;

impl Layer {
    fn weight_shape(self) -> Vec<usize> {
        match self {
            Self::Linear { inputs, outputs } => vec![outputs, inputs],
            Self::Conv { inputs, outputs } => vec![outputs, inputs, KERNEL, KERNEL],
        }
    }

    fn outputs(self) -> usize {
        match self {
            Self::Linear { outputs, .. } | Self::Conv { outputs, .. } => outputs,
        }
    }

    fn fan_in(self) -> usize {
        match self {
            Self::Linear { inputs, .. } => inputs,
            Self::Conv { inputs, .. } => inputs * KERNEL * KERNEL,
        }
    }

    fn parameter_count(self) -> usize {
        self.weight_shape().iter().product::<usize>() + self.outputs()
    }
}

/// A model: its spec and its parameters (weight and bias of each layer, in layer order).
pub struct Model {
    spec: ModelSpec,
    layers: Vec<(Layer, Var, Var)>,
    device: Device,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Model")
            .field("spec", &self.spec)
            .field("parameters", &self.parameter_count())
            .finish()
    }
}

impl Model {
    /// A model with parameters initialised from `seed`.
    ///
    /// # Errors
    ///
    /// An invalid spec.
    pub fn new(spec: ModelSpec, seed: u64) -> Result<Self> {
        spec.validate()?;
        let device = Device::Cpu;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut layers = Vec::new();
        for layer in spec.layer_shapes() {
            let shape = layer.weight_shape();
            let bound = 1.0 / (layer.fan_in() as f32).sqrt();
            let values: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            let weight = Var::from_tensor(&Tensor::from_vec(values, shape, &device)?)?;
            let bias = Var::from_tensor(&Tensor::zeros(layer.outputs(), DType::F32, &device)?)?;
            layers.push((layer, weight, bias));
        }
        Ok(Self {
            spec,
            layers,
            device,
        })
    }

    /// The spec.
    #[must_use]
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The device tensors live on.
    #[must_use]
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every parameter variable, in the fixed order of [`Model::parameters`].
    #[must_use]
    pub fn variables(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(_, weight, bias)| [weight.clone(), bias.clone()])
            .collect()
    }

    /// Number of scalar parameters.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|(layer, _, _)| layer.parameter_count())
            .sum()
    }

    /// The logits of a batch: `input` is `(rows, features)`.
    ///
    /// # Errors
    ///
    /// A tensor of the wrong shape.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let mut activation = match &self.spec.architecture {
            Architecture::Cnn { side, .. } => input.reshape((input.dim(0)?, 1, *side, *side))?,
            _ => input.clone(),
        };
        let last = self.layers.len().saturating_sub(1);
        for (index, (layer, weight, bias)) in self.layers.iter().enumerate() {
            activation = match layer {
                Layer::Linear { .. } => {
                    if activation.rank() > 2 {
                        activation = activation.flatten_from(1)?;
                    }
                    Linear::new(weight.as_tensor().clone(), Some(bias.as_tensor().clone()))
                        .forward(&activation)?
                }
                Layer::Conv { .. } => {
                    let config = Conv2dConfig {
                        padding: 1,
                        ..Conv2dConfig::default()
                    };
                    let convolved = Conv2d::new(
                        weight.as_tensor().clone(),
                        Some(bias.as_tensor().clone()),
                        config,
                    )
                    .forward(&activation)?;
                    convolved.relu()?.max_pool2d(2)?
                }
            };
            if matches!(layer, Layer::Linear { .. }) && index != last {
                activation = activation.relu()?;
            }
        }
        Ok(activation)
    }

    /// All parameters as one flat vector: each layer's weight then bias, row-major.
    ///
    /// # Errors
    ///
    /// Only on a tensor-library failure.
    pub fn parameters(&self) -> Result<Vec<f32>> {
        let mut values = Vec::with_capacity(self.parameter_count());
        for variable in self.variables() {
            values.extend(variable.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(values)
    }

    /// Replaces all parameters from a flat vector laid out as [`Model::parameters`] returns.
    ///
    /// # Errors
    ///
    /// A vector of the wrong length or with a value that is not finite.
    pub fn set_parameters(&self, values: &[f32]) -> Result<()> {
        if values.len() != self.parameter_count() {
            return Err(LearnError::invalid(
                "parameters",
                format!(
                    "{} values given; the model has {} parameters",
                    values.len(),
                    self.parameter_count()
                ),
            ));
        }
        if let Some(position) = values.iter().position(|value| !value.is_finite()) {
            return Err(LearnError::invalid(
                "parameters",
                format!("parameter {position} is not a finite number"),
            ));
        }
        let mut offset = 0;
        for variable in self.variables() {
            let count = variable.elem_count();
            let tensor = Tensor::from_slice(
                &values[offset..offset + count],
                variable.shape(),
                &self.device,
            )?;
            variable.set(&tensor)?;
            offset += count;
        }
        Ok(())
    }

    /// Predicted class of every row.
    ///
    /// # Errors
    ///
    /// Data that does not fit the model.
    pub fn predict(&self, data: &Dataset) -> Result<Vec<u32>> {
        self.spec.check_data(data)?;
        let mut predictions = Vec::with_capacity(data.rows());
        for (features, _) in batches(data, EVALUATION_BATCH_ROWS) {
            let input = Tensor::from_slice(
                features,
                (features.len() / data.feature_count(), data.feature_count()),
                &self.device,
            )?;
            predictions.extend(self.forward(&input)?.argmax(1)?.to_vec1::<u32>()?);
        }
        Ok(predictions)
    }

    /// Accuracy and mean cross-entropy over a dataset.
    ///
    /// # Errors
    ///
    /// Data that does not fit the model, or an empty dataset.
    pub fn evaluate(&self, data: &Dataset) -> Result<Evaluation> {
        self.spec.check_data(data)?;
        if data.rows() == 0 {
            return Err(LearnError::invalid("evaluation", "no rows to evaluate on"));
        }
        let mut correct = 0_usize;
        let mut loss_sum = 0.0_f64;
        for (features, labels) in batches(data, EVALUATION_BATCH_ROWS) {
            let rows = labels.len();
            let input = Tensor::from_slice(features, (rows, data.feature_count()), &self.device)?;
            let targets = Tensor::from_slice(labels, rows, &self.device)?;
            let logits = self.forward(&input)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &targets)?.to_scalar::<f32>()?;
            loss_sum += f64::from(loss) * rows as f64;
            let predicted = logits.argmax(1)?.to_vec1::<u32>()?;
            correct += predicted
                .iter()
                .zip(labels)
                .filter(|(predicted, label)| predicted == label)
                .count();
        }
        Ok(Evaluation {
            accuracy: correct as f64 / data.rows() as f64,
            loss: loss_sum / data.rows() as f64,
        })
    }

    /// Writes the weights as safetensors, with the spec, the class names and the standardizer (as
    /// tensors `standardizer.mean` / `standardizer.scale`) so the file alone can make predictions.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn save(&self, path: &Path, classes: &[String], standardizer: &Standardizer) -> Result<()> {
        let file_error = |message: String| LearnError::File {
            path: path.to_path_buf(),
            message,
        };
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (index, (_, weight, bias)) in self.layers.iter().enumerate() {
            tensors.push((format!("layer{index}.weight"), weight.as_tensor().clone()));
            tensors.push((format!("layer{index}.bias"), bias.as_tensor().clone()));
        }
        tensors.push((
            "standardizer.mean".into(),
            Tensor::from_slice(&standardizer.mean, standardizer.mean.len(), &self.device)?,
        ));
        tensors.push((
            "standardizer.scale".into(),
            Tensor::from_slice(&standardizer.scale, standardizer.scale.len(), &self.device)?,
        ));
        let metadata = HashMap::from([
            (
                METADATA_SPEC.to_string(),
                serde_json::to_string(&self.spec).map_err(|error| file_error(error.to_string()))?,
            ),
            (
                METADATA_CLASSES.to_string(),
                serde_json::to_string(classes).map_err(|error| file_error(error.to_string()))?,
            ),
        ]);
        safetensors::serialize_to_file(tensors, Some(metadata), path)
            .map_err(|error| file_error(format!("cannot write the weights: {error}")))
    }

    /// Reads a weights file written by [`Model::save`].
    ///
    /// # Errors
    ///
    /// I/O errors, a file over [`limits::MODEL_FILE_BYTES_MAX`], or a file that is not such a model.
    pub fn load(path: &Path) -> Result<SavedModel> {
        let file_error = |message: String| LearnError::File {
            path: path.to_path_buf(),
            message,
        };
        let size = std::fs::metadata(path)
            .map_err(|error| file_error(error.to_string()))?
            .len();
        if size > limits::MODEL_FILE_BYTES_MAX {
            return Err(file_error(format!(
                "{size} bytes; model files are at most {} bytes",
                limits::MODEL_FILE_BYTES_MAX
            )));
        }
        let bytes = std::fs::read(path).map_err(|error| file_error(error.to_string()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|error| file_error(format!("not a safetensors file: {error}")))?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let field = |key: &str| {
            metadata.get(key).ok_or_else(|| {
                file_error(format!(
                    "no {key:?} metadata: not a model written by tributary"
                ))
            })
        };
        let spec: ModelSpec = serde_json::from_str(field(METADATA_SPEC)?)
            .map_err(|error| file_error(format!("bad model spec: {error}")))?;
        let classes: Vec<String> = serde_json::from_str(field(METADATA_CLASSES)?)
            .map_err(|error| file_error(format!("bad class list: {error}")))?;
        if classes.len() != spec.classes {
            return Err(file_error(format!(
                "{} class names for a model of {} classes",
                classes.len(),
                spec.classes
            )));
        }
        let model = Self::new(spec, 0)?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &model.device)?;
        let tensor = |name: String| {
            tensors
                .get(&name)
                .ok_or_else(|| file_error(format!("no tensor {name:?}")))
        };
        for (index, (_, weight, bias)) in model.layers.iter().enumerate() {
            for (variable, name) in [
                (weight, format!("layer{index}.weight")),
                (bias, format!("layer{index}.bias")),
            ] {
                let value = tensor(name.clone())?.to_dtype(DType::F32)?;
                if value.shape() != variable.shape() {
                    return Err(file_error(format!(
                        "tensor {name:?} has shape {:?}; the spec needs {:?}",
                        value.shape(),
                        variable.shape()
                    )));
                }
                variable.set(&value)?;
            }
        }
        let vector = |name: &str| -> Result<Vec<f32>> {
            let values = tensor(name.to_string())?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if values.len() != model.spec.features || values.iter().any(|value| !value.is_finite())
            {
                return Err(file_error(format!(
                    "tensor {name:?} must hold {} finite values",
                    model.spec.features
                )));
            }
            Ok(values)
        };
        let standardizer = Standardizer {
            mean: vector("standardizer.mean")?,
            scale: vector("standardizer.scale")?,
        };
        if standardizer.scale.iter().any(|&scale| scale <= 0.0) {
            return Err(file_error("standardizer scales must be positive".into()));
        }
        if model.parameters()?.iter().any(|value| !value.is_finite()) {
            return Err(file_error("a weight is not a finite number".into()));
        }
        Ok(SavedModel {
            model,
            classes,
            standardizer,
        })
    }
}

/// Metadata key of the model spec (JSON) in a weights file.
const METADATA_SPEC: &str = "tributary.model_spec";
/// Metadata key of the class names (JSON) in a weights file.
const METADATA_CLASSES: &str = "tributary.classes";
/// Rows per forward pass when evaluating.
const EVALUATION_BATCH_ROWS: usize = 1_024;

/// A model read from a weights file, with what it needs to make predictions.
#[derive(Debug)]
pub struct SavedModel {
    /// The model.
    pub model: Model,
    /// Class names, by class id.
    pub classes: Vec<String>,
    /// The statistics inputs are standardised with.
    pub standardizer: Standardizer,
}

/// How well a model does on a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Fraction of rows classified correctly, 0..1.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
}

/// Consecutive `(features, labels)` slices of at most `rows` rows.
pub(crate) fn batches(data: &Dataset, rows: usize) -> impl Iterator<Item = (&[f32], &[u32])> {
    data.features()
        .chunks(rows * data.feature_count())
        .zip(data.labels().chunks(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(architecture: Architecture) -> ModelSpec {
        ModelSpec {
            architecture,
            features: 64,
            classes: 10,
        }
    }

    #[test]
    fn parameter_counts() {
        assert_eq!(
            Model::new(spec(Architecture::Softmax), 1)
                .unwrap()
                .parameter_count(),
            650
        );
        assert_eq!(
            Model::new(spec(Architecture::Mlp { hidden: vec![32] }), 1)
                .unwrap()
                .parameter_count(),
            64 * 32 + 32 + 32 * 10 + 10
        );
        let cnn = Model::new(
            spec(Architecture::Cnn {
                side: 8,
                channels: [4, 8],
            }),
            1,
        )
        .unwrap();
        assert_eq!(
            cnn.parameter_count(),
            4 * 9 + 4 + 8 * 4 * 9 + 8 + 8 * 4 * 10 + 10
        );
        let logits = cnn
            .forward(&Tensor::zeros((3, 64), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(logits.dims(), &[3, 10]);
    }

    #[test]
    fn invalid_specs_are_refused() {
        let bad = [
            ModelSpec {
                architecture: Architecture::Softmax,
                features: 0,
                classes: 10,
            },
            ModelSpec {
                architecture: Architecture::Softmax,
                features: 4,
                classes: 1,
            },
            spec(Architecture::Cnn {
                side: 7,
                channels: [4, 8],
            }),
            spec(Architecture::Mlp { hidden: vec![0] }),
            spec(Architecture::Mlp {
                hidden: vec![4_000, 4_000, 4_000],
            }),
        ];
        for spec in bad {
            assert!(Model::new(spec.clone(), 1).is_err(), "{spec:?}");
        }
        assert!(Architecture::named("transformer", 64).is_err());
    }

    #[test]
    fn parameters_round_trip_and_seed_determines_them() {
        let model = Model::new(spec(Architecture::Mlp { hidden: vec![8] }), 7).unwrap();
        let same = Model::new(spec(Architecture::Mlp { hidden: vec![8] }), 7).unwrap();
        let other = Model::new(spec(Architecture::Mlp { hidden: vec![8] }), 8).unwrap();
        let values = model.parameters().unwrap();
        assert_eq!(values, same.parameters().unwrap());
        assert_ne!(values, other.parameters().unwrap());
        other.set_parameters(&values).unwrap();
        assert_eq!(other.parameters().unwrap(), values);
        assert!(model.set_parameters(&values[1..]).is_err());
        let mut poisoned = values.clone();
        poisoned[3] = f32::NAN;
        assert!(model.set_parameters(&poisoned).is_err());
    }

    #[test]
    fn safetensors_round_trip() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("model.safetensors");
        let model = Model::new(
            spec(Architecture::Cnn {
                side: 8,
                channels: [2, 3],
            }),
            3,
        )
        .unwrap();
        let classes: Vec<String> = (0..10).map(|class| class.to_string()).collect();
        let standardizer = Standardizer {
            mean: vec![0.5; 64],
            scale: vec![2.0; 64],
        };
        model.save(&path, &classes, &standardizer).unwrap();
        let saved = Model::load(&path).unwrap();
        assert_eq!(saved.model.spec(), model.spec());
        assert_eq!(
            saved.model.parameters().unwrap(),
            model.parameters().unwrap()
        );
        assert_eq!(saved.classes, classes);
        assert_eq!(saved.standardizer, standardizer);

        std::fs::write(&path, b"not a model").unwrap();
        assert!(Model::load(&path).is_err());
    }
}
