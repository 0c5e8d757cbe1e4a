//! The lab's one typed configuration, read from `config.json`.
//!
//! Every constant of the lab lives here: paths, API settings, data-set size, image size,
//! split ratios, hyper-parameters, augmentation, embedding settings, device and threads.
//! Unknown keys are rejected; [`Config::validate`] names the key, the bad value and the
//! allowed range.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable that selects another config file.
pub const CONFIG_ENV: &str = "LAB5_CONFIG";
/// Top-level key of a config file that holds only changes to another config file (its
/// value: that file, relative to this one's folder), e.g. `config.unseen.json`.
pub(crate) const EXTENDS_KEY: &str = "extends";
/// Most files in a chain of `extends`.
const MAX_EXTENDS: usize = 8;

/// An error in the configuration file, naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON did not parse or did not match the schema (unknown key, wrong type).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde's message, with line and column.
        message: String,
    },
    /// A value is outside its allowed range.
    #[error("config key `{key}`: value {value} is not allowed (allowed: {allowed})")]
    Invalid {
        /// Dotted key path, e.g. `cnn.epochs`.
        key: String,
        /// The offending value.
        value: String,
        /// What would be accepted.
        allowed: String,
    },
}

/// Where data, runs, reports and pretrained weights live.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// Images, manifest and caches (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// Training runs: checkpoints, TensorBoard events, metrics, figures.
    pub runs_dir: PathBuf,
    /// Rendered notebooks and reports.
    pub reports_dir: PathBuf,
    /// Pretrained weights; `null` means `$LAB5_HOME/weights`.
    pub weights_dir: Option<PathBuf>,
    /// Your own photos (any JPEG, PNG or WebP files, no class folders), shown with both
    /// models' answers and Grad-CAM maps in notebook `07_your_photos`.
    #[serde(default = "default_my_photos")]
    pub my_photos: PathBuf,
    /// Another labelled ImageFolder collection (`DIR/cat`, `DIR/dog`) both models are
    /// evaluated on (`lab5 evaluate --data`, notebook `07_your_photos`); `null`: none.
    #[serde(default)]
    pub other_collection: Option<PathBuf>,
}

fn default_my_photos() -> PathBuf {
    PathBuf::from("my_photos")
}

/// Where the images come from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The Cat API and The Dog API.
    Api,
    /// An ImageFolder-style directory (`data.folder`).
    Folder,
}

/// Arithmetic of the CNN's convolutions while training.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `bf16` on CPUs with native bfloat16 dot products (AVX512-BF16), else `fp32`.
    Auto,
    /// Everything in 32-bit floats (the default: the same results on every machine).
    #[default]
    Fp32,
    /// Mixed precision like `torch.autocast(dtype=torch.bfloat16)`: convolutions run in
    /// bfloat16 on bf16 copies of the fp32 weights; batch-norm statistics, linear layers,
    /// the loss, the gradients of the weights and the optimiser stay in fp32.
    Bf16,
}

/// Train/validation/test fractions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Fraction for training.
    pub train: f64,
    /// Fraction for validation (early stopping, model choice).
    pub val: f64,
    /// Fraction held out for the final test.
    pub test: f64,
}

/// The data set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// `api` or `folder`.
    pub source: Source,
    /// The ImageFolder directory used when `source` is `folder` (and by `lab5 import`).
    pub folder: PathBuf,
    /// Images per class (cat, dog).
    pub per_class: usize,
    /// Split ratios, summing to 1.
    pub split: Split,
    /// Seed of the stratified split (and of the breeds drawn by `unseen_breed_share`).
    pub seed: u64,
    /// Breeds (names as in the manifest's `breed_name`, any case) kept entirely out of
    /// train and val: every photo of them goes to the test split, where it is scored
    /// separately as an unseen breed. Empty (the default): none.
    #[serde(default)]
    pub unseen_breeds: Vec<String>,
    /// Share of the breeds of each class also kept out of train and val, drawn with
    /// `seed` (at least one breed of a class that has two or more when above 0; never
    /// every breed of a class). 0 (the default): none.
    #[serde(default)]
    pub unseen_breed_share: f64,
    /// Photos whose perceptual hashes (256 bits) differ in at most this many bits are
    /// near-copies of each other: reported, and kept inside one split. 0: exact
    /// look-alikes only. Default 12.
    #[serde(default = "near_duplicate_distance")]
    pub near_duplicate_distance: u32,
}

/// serde default of `data.near_duplicate_distance`.
fn near_duplicate_distance() -> u32 {
    12
}

/// One API host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiHost {
    /// Base URL, e.g. `https://api.thecatapi.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the key (never the key itself).
    pub key_env: String,
}

/// The Cat API / The Dog API client settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// The Cat API.
    pub cat: ApiHost,
    /// The Dog API.
    pub dog: ApiHost,
    /// `limit` per search request (the server may return fewer).
    pub page_size: usize,
    /// `RANDOM`, `ASC` or `DESC`.
    pub order: String,
    /// `thumb`, `small`, `med` or `full`.
    pub size: String,
    /// `mime_types` query value.
    pub mime_types: String,
    /// Ask only for images with breed information.
    pub has_breeds: bool,
    /// Concurrent downloads.
    pub concurrency: usize,
    /// Per-request timeout in seconds.
    pub timeout_secs: u64,
    /// Retries per request on timeouts, 429 and 5xx.
    pub retries: u32,
    /// First back-off delay in milliseconds (doubled each retry, with jitter).
    pub backoff_ms: u64,
    /// Longest back-off delay (also caps `Retry-After`).
    pub max_backoff_ms: u64,
    /// Largest accepted image body in bytes.
    pub max_image_bytes: u64,
    /// Most search requests per class before giving up.
    pub request_budget: usize,
}

/// The decoding policy's tunable limits ([`crate::decode`]): what counts as a photo lab5
/// can read, at the door (import, collect) and in every later step alike.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// Most pixels (width x height) of an image; larger ones are refused from their
    /// header, before decoding.
    pub max_pixels: u64,
    /// Smallest accepted shorter side in pixels.
    pub min_side: u32,
    /// Largest accepted ratio of the longer side to the shorter.
    pub max_aspect_ratio: f64,
}

impl Default for Images {
    /// The values of the shipped `config.json`; used for configs and run records written
    /// before this section existed.
    fn default() -> Self {
        Images {
            max_pixels: 50_000_000,
            min_side: 32,
            max_aspect_ratio: 8.0,
        }
    }
}

impl Images {
    /// Only the hard limits: for showing photos that are already in the data set
    /// (accepted under whatever policy was in force then).
    pub fn display() -> Self {
        Images {
            max_pixels: MAX_PIXELS,
            min_side: 1,
            max_aspect_ratio: MAX_ASPECT_RATIO,
        }
    }
}

/// Upper end of `images.max_pixels` (100 megapixels: 400 MB decoded as RGBA).
const MAX_PIXELS: u64 = 100_000_000;
/// Upper end of `images.max_aspect_ratio`.
const MAX_ASPECT_RATIO: f64 = 100.0;

/// Decoding and resizing, done once into the tensor cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Side of the square network input in pixels.
    pub image_size: i64,
    /// Shorter side after resizing (keeping aspect), before the centre crop.
    pub resize_shorter: i64,
}

/// On-the-fly augmentation of training batches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Random horizontal flip.
    pub hflip: bool,
    /// Largest random shift, as a fraction of the image side, with reflection padding
    /// (the reflect-padded random crop of the classic recipes; 0 disables).
    pub shift: f64,
    /// Smallest area fraction of a random resized crop (1 disables cropping).
    pub crop_scale_min: f64,
    /// Smallest aspect ratio of the crop.
    pub crop_ratio_min: f64,
    /// Largest aspect ratio of the crop.
    pub crop_ratio_max: f64,
    /// Brightness jitter strength (0 disables).
    pub brightness: f64,
    /// Contrast jitter strength (0 disables).
    pub contrast: f64,
    /// Saturation jitter strength (0 disables).
    pub saturation: f64,
    /// Largest random rotation in degrees, each way (0 disables; reflection fills the
    /// corners).
    #[serde(default)]
    pub rotate: f64,
    /// Probability of turning a training image grey (torchvision's `RandomGrayscale`;
    /// 0 disables).
    #[serde(default)]
    pub grayscale: f64,
    /// Probability of a Gaussian blur of a training image (optics out of focus, a
    /// resized photo; torchvision's `RandomApply([GaussianBlur])`; 0 disables).
    #[serde(default)]
    pub blur: f64,
    /// Largest blur sigma in pixels of the model's input (drawn per image in
    /// `[0.1, blur_sigma]`).
    #[serde(default = "default_blur_sigma")]
    pub blur_sigma: f64,
    /// Probability of additive Gaussian pixel noise on a training image (sensor noise;
    /// 0 disables).
    #[serde(default)]
    pub noise: f64,
    /// Largest noise standard deviation on the 0..1 pixel scale (drawn per image in
    /// `[0, noise_std]`).
    #[serde(default = "default_noise_std")]
    pub noise_std: f64,
    /// Probability of a low-resolution copy of a training image: shrunk (area average) to
    /// a side drawn in `[downscale_min, 1]` of the input and enlarged back, half of the
    /// time with nearest neighbours (pixelated), half bilinear (a small photo upscaled);
    /// 0 disables.
    #[serde(default)]
    pub downscale: f64,
    /// Smallest side fraction of the low-resolution copy.
    #[serde(default = "default_downscale_min")]
    pub downscale_min: f64,
    /// CNN only: side in pixels of the square the training crops are cut from (the photo's
    /// shorter side resized to this, centre-cropped; a second preprocessing cache). The
    /// crop box (`crop_scale_min`, ratios, `shift`) is then a fraction of this square,
    /// resampled to `preprocess.image_size`: torchvision's `RandomResizedCrop` on the
    /// photo for training with `Resize + CenterCrop` for evaluation. 0: crops come from
    /// the evaluation crop itself (`preprocess.image_size`).
    #[serde(default)]
    pub crop_source: i64,
    /// CNN only: side in pixels of the training batches (0: `preprocess.image_size`).
    /// Below the evaluation side, the model trains on cheaper, smaller images and is
    /// evaluated at `preprocess.image_size` (its global average pool takes any side):
    /// "train low, test high" (Touvron et al., *Fixing the train-test resolution
    /// discrepancy*, NeurIPS 2019). With random resized crops (`crop_scale_min` < 1) the
    /// objects then appear about as large in training as in evaluation; without crops
    /// they appear smaller.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub train_size: i64,
    /// CNN only: probability that a training batch is mixed (0 = off): with mixup
    /// (Zhang et al., *mixup: Beyond Empirical Risk Minimization*, ICLR 2018) or CutMix
    /// (Yun et al., *CutMix*, ICCV 2019), each photo with another photo of the batch, and
    /// the loss weighted between their two labels; timm's `Mixup(prob=...)`.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub mix_prob: f64,
    /// α of the Beta(α, α) that draws mixup's weight λ (0 = no mixup); timm's default 0.8.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub mixup_alpha: f64,
    /// α of the Beta(α, α) that draws CutMix's pasted area, 1 − λ (0 = no CutMix); 1.0 in
    /// the paper. With both α above 0 a mixed batch is CutMix or mixup with equal odds
    /// (timm's `switch_prob` 0.5).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub cutmix_alpha: f64,
}

/// Serde helper: leaves an option at its "off" value out of the written config (and out
/// of run keys, so runs trained before the option existed still match), except while
/// [`Config::to_pretty_json`] writes every key for a person to read.
fn is_zero(v: &i64) -> bool {
    *v == 0 && !EVERY_KEY.get()
}

/// Serde helper: [`is_zero`] for the probability and α of batch mixing.
fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0 && !EVERY_KEY.get()
}

/// Serde helper: [`is_zero`] for a list.
fn is_empty(v: &[usize]) -> bool {
    v.is_empty() && !EVERY_KEY.get()
}

thread_local! {
    /// Set while [`Config::to_pretty_json`] serialises: the `skip_serializing_if`
    /// helpers then keep every key.
    static EVERY_KEY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets [`EVERY_KEY`] until dropped, then restores its previous value (also when the
/// serialisation panics, so run keys never pick up the off keys afterwards).
struct EveryKey(bool);

impl EveryKey {
    fn set() -> EveryKey {
        EveryKey(EVERY_KEY.replace(true))
    }
}

impl Drop for EveryKey {
    fn drop(&mut self) {
        EVERY_KEY.set(self.0);
    }
}

fn default_blur_sigma() -> f64 {
    1.5
}

fn default_noise_std() -> f64 {
    0.1
}

fn default_downscale_min() -> f64 {
    0.4
}

/// The training settings both models share (`config.json` keeps them flat inside `cnn`
/// and `transfer`: `#[serde(flatten)]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Train {
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Peak learning rate of the one-cycle schedule.
    pub max_lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Early-stopping patience in epochs (validation loss).
    pub patience: usize,
    /// Label smoothing of the cross-entropy loss (0 = plain cross-entropy).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Decay of the exponential moving average of the weights that validation and the
    /// best checkpoint use (0 = no averaging; typical 0.99 ... 0.999).
    #[serde(default)]
    pub ema_decay: f64,
}

/// The CNN trained from scratch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cnn {
    /// Output channels of each conv block (at least 4 blocks).
    pub channels: Vec<i64>,
    /// Size of the penultimate linear layer (the embedding).
    pub embedding_dim: i64,
    /// Dropout probability before the linear layers.
    pub dropout: f64,
    /// Batch-norm after every convolution (false: convolutions with a bias instead; for
    /// the ablation study).
    #[serde(default = "yes")]
    pub batch_norm: bool,
    /// Test-time augmentation in evaluation: the class probabilities are the mean of the
    /// image's and its mirror image's (doubles the cost of evaluation and prediction).
    #[serde(default)]
    pub tta_hflip: bool,
    /// Epochs, batch size, learning rate, weight decay, patience.
    #[serde(flatten)]
    pub train: Train,
    /// Training arithmetic (`fp32`, `bf16` or `auto`; evaluation is always fp32).
    #[serde(default)]
    pub precision: Precision,
    /// After training, recompute every batch-norm layer's running statistics on the clean,
    /// whole training photos with the kept weights ("precise BN": Wu & Johnson,
    /// *Rethinking "Batch" in BatchNorm*, 2021). Needed when training photos are random
    /// resized crops, whose statistics differ from the whole photos evaluated (see the
    /// README); costs one forward pass over the training split.
    #[serde(default, skip_serializing_if = "is_false")]
    pub precise_bn: bool,
    /// Stride of the first block's convolution: 1 (conv at full resolution, then max-pool)
    /// or 2 (a strided conv does the first halving and the block has no max-pool: the
    /// "stem" of ResNet-style networks: a quarter of block 1's conv multiply-adds).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub stem_stride: i64,
    /// Blocks (1-based indices into `channels`) followed by a residual basic block:
    /// `x + BN(conv3x3(ReLU(BN(conv3x3(x)))))`, then ReLU, at that block's channels and
    /// resolution (He et al., "Deep Residual Learning for Image Recognition", 2016,
    /// torchvision's `BasicBlock` with `zero_init_residual=True`: the last batch-norm's γ
    /// starts at 0, Goyal et al. 2017, so each block starts as the identity; with
    /// `batch_norm` false its convs have biases and it does not). Empty: the plain
    /// VGG-style chain.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub residual_after: Vec<usize>,
}

/// Serde default: 1.
fn one() -> i64 {
    1
}

/// Serde helper: leaves a stride of 1 out of the written config and run keys.
fn is_one(v: &i64) -> bool {
    *v == 1 && !EVERY_KEY.get()
}

/// Serde helper: leaves a switch that is off out of the written config and run keys.
fn is_false(v: &bool) -> bool {
    !*v && !EVERY_KEY.get()
}

/// The transfer-learning model: frozen backbone plus our head.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transfer {
    /// `efficientnet_lite0` or `resnet18`.
    pub backbone: String,
    /// Weights file (safetensors); `null` means the default under `weights_dir`.
    pub weights: Option<PathBuf>,
    /// Input side in pixels.
    pub image_size: i64,
    /// Shorter side after resizing, before the centre crop (256 for 224: the ImageNet
    /// evaluation protocol the backbone was trained for).
    pub resize_shorter: i64,
    /// Hidden linear layer of the head.
    pub hidden: i64,
    /// Penultimate linear layer of the head (the embedding).
    pub embedding_dim: i64,
    /// Dropout in the head.
    pub dropout: f64,
    /// Epochs, batch size, learning rate, weight decay, patience.
    #[serde(flatten)]
    pub train: Train,
    /// Backbone blocks to unfreeze for fine-tuning (0 = fully frozen).
    pub unfreeze_blocks: usize,
    /// Train on images through the backbone with `augment` applied, instead of on the
    /// features computed once (much slower; implied by `unfreeze_blocks > 0`).
    pub augment: bool,
    /// Arithmetic of the backbone pass (the features the head trains on and the label
    /// check's zero-shot probabilities): `fp32` (the default), `bf16`, or `auto` (bf16 on
    /// CPUs with native bfloat16, AVX512-BF16, else fp32). Either way the pass runs
    /// EfficientNet-Lite0 with its batch-norms folded into the convolutions, channels-last.
    /// bf16 is faster but the transfer model's image path (predict, robustness, Grad-CAM)
    /// runs the fp32 backbone, so its figures can differ by a photo from the run's.
    #[serde(default)]
    pub backbone_precision: Precision,
    /// Photos per forward pass of the backbone pass (results do not depend on it; speed
    /// and peak memory do).
    #[serde(default = "default_backbone_batch")]
    pub backbone_batch_size: usize,
}

fn default_backbone_batch() -> usize {
    16
}

/// The automatic label check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// A suspected mislabel needs the ImageNet head to favour the other class by more
    /// than this probability margin (0: any disagreement)...
    pub min_margin: f64,
    /// ...and at least this share of the image's nearest neighbours (backbone features)
    /// to carry the other label.
    pub min_neighbour_share: f64,
    /// Nearest neighbours consulted per image (cosine similarity of backbone features).
    pub neighbours: usize,
    /// An image is flagged as "neither" when p_neither is at least this.
    pub neither_threshold: f64,
}

/// 2-D projections of the embeddings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Embed {
    /// t-SNE perplexity.
    pub tsne_perplexity: f64,
    /// Barnes-Hut theta.
    pub tsne_theta: f64,
    /// t-SNE iterations.
    pub tsne_epochs: usize,
    /// UMAP neighbours.
    pub umap_neighbors: usize,
    /// UMAP minimum distance.
    pub umap_min_dist: f64,
    /// UMAP optimisation epochs.
    pub umap_epochs: usize,
    /// k of the k-NN separation score.
    pub knn_k: usize,
    /// Seed of both projections.
    pub seed: u64,
}

/// The model comparison (`lab5 compare`) and the HTML report (`lab5 run`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Photos timed per model for the inference speed (test split first, then val, train).
    pub inference_images: usize,
    /// Photos per class in the report's sample grid.
    pub sample_photos: usize,
    /// Most confident test mistakes shown per model.
    pub mistakes: usize,
    /// Flagged photos of the label check shown at most.
    pub flagged_photos: usize,
    /// Columns of the photo grids.
    pub grid_cols: usize,
    /// A train-minus-test accuracy gap above this fraction is called over-fitting (mild up
    /// to twice it).
    pub overfit_gap: f64,
    /// The comparison calls one model more accurate only when McNemar's exact test on the
    /// test photos gives a p-value below this.
    #[serde(default = "default_significance")]
    pub significance: f64,
    /// Equal-width bins of confidence (0.5 to 1) in the reliability diagrams.
    #[serde(default = "default_calibration_bins")]
    pub calibration_bins: usize,
    /// Breeds named in the comparison's list of breeds each model calls the other species
    /// most often, and drawn in its per-breed chart.
    #[serde(default = "default_worst_breeds")]
    pub worst_breeds: usize,
}

fn default_calibration_bins() -> usize {
    10
}

fn default_worst_breeds() -> usize {
    10
}

fn default_significance() -> f64 {
    0.05
}

impl Default for Report {
    /// The values of the shipped `config.json`; used for configs and run records written
    /// before this section existed.
    fn default() -> Self {
        Report {
            inference_images: 128,
            sample_photos: 8,
            mistakes: 12,
            flagged_photos: 24,
            grid_cols: 6,
            overfit_gap: 0.05,
            significance: default_significance(),
            calibration_bins: default_calibration_bins(),
            worst_breeds: default_worst_breeds(),
        }
    }
}

/// Grad-CAM heat maps (`lab5 explain`, notebook `07_your_photos`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Explain {
    /// Side in pixels of the photo a heat map is drawn over (the model's centre crop,
    /// decoded again at this size).
    pub overlay_size: u32,
    /// Weight of the heat map's colour over the photo, 0..=1.
    pub opacity: f64,
    /// Photos of `paths.my_photos` shown at most (the first by file name).
    pub max_photos: usize,
}

impl Default for Explain {
    /// The values of the shipped `config.json`; used for configs and run records written
    /// before this section existed.
    fn default() -> Self {
        Explain {
            overlay_size: 224,
            opacity: 0.45,
            max_photos: 24,
        }
    }
}

/// TensorBoard output (every run's `<run>/<subdir>/` folder) and `lab5 tensorboard`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorBoard {
    /// Sub-folder of each run holding the event files and the projector's files.
    pub subdir: String,
    /// Equal-width buckets of the per-layer weight and gradient histograms written every
    /// epoch (PyTorch's `add_histogram(..., bins=N)`); 0 = no histograms.
    #[serde(default = "default_histogram_bins")]
    pub histogram_bins: usize,
    /// Images of the first augmented training batch shown as one grid at the start
    /// (at most the batch size); 0 = no grid.
    #[serde(default = "default_batch_images")]
    pub batch_images: usize,
    /// Side in pixels of each photo's thumbnail in the projector's sprite image (the
    /// sprite is a square grid of all photos, at most 8192 pixels a side).
    #[serde(default = "default_thumbnail")]
    pub thumbnail: u32,
    /// Port `lab5 tensorboard` serves on (the next free one when it is taken).
    #[serde(default = "default_port")]
    pub port: u16,
}

fn default_histogram_bins() -> usize {
    30
}

fn default_batch_images() -> usize {
    32
}

fn default_thumbnail() -> u32 {
    64
}

fn default_port() -> u16 {
    6006
}

/// Device, threads and the global seed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Intra-op threads for libtorch.
    pub threads: usize,
    /// Seed for weights, shuffling and augmentation.
    pub seed: u64,
}

/// The ablation study of the CNN recipe (`lab5 ablate`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ablation {
    /// Epochs of every variant, the recipe included (a reduced budget is fine: the
    /// comparison is like for like).
    pub epochs: usize,
    /// Input side of every variant in pixels (0 = `preprocess.image_size`).
    pub image_size: i64,
    /// Variants to train besides the recipe (`no_batch_norm`, `no_dropout`, `no_augment`,
    /// `no_crop`, `no_label_smoothing`, `no_ema`, `no_tta`).
    pub variants: Vec<String>,
}

impl Default for Ablation {
    /// 30 epochs at the CNN's own input size; batch-norm, dropout and augmentation.
    fn default() -> Self {
        Ablation {
            epochs: 30,
            image_size: 0,
            variants: ["no_batch_norm", "no_dropout", "no_augment"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// Labelling a folder of unlabelled photos (`lab5 label DIR`): zero-shot proposals, then
/// active-learning rounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// The folder the notebook labels; `null` = a demo folder of `demo_photos` photos of
    /// the data set copied without their labels into `<data_dir>/unlabelled-demo/`.
    pub folder: Option<PathBuf>,
    /// Photos copied into the demo folder.
    pub demo_photos: usize,
    /// Where `labels.csv`, `rounds.csv`, `state.json` and the rounds' files go; `null` =
    /// the labelled folder itself.
    pub out_dir: Option<PathBuf>,
    /// Photos a person labels per round.
    pub k: usize,
    /// How a round picks its photos: `uncertainty` (proposal closest to p = 0.5),
    /// `random`, or `diverse` (far apart in feature space among the most uncertain).
    pub strategy: String,
    /// `diverse` picks among the `k * diverse_pool` most uncertain photos.
    pub diverse_pool: usize,
    /// Inverse L2 strength of the logistic regression (scikit-learn's `C`): the penalty
    /// is `||w - w_zero_shot||^2 / 2` against `c` times the summed log-loss.
    pub c: f64,
    /// Seed of the random picks and of the simulation's pools.
    pub seed: u64,
    /// Columns of a round's photo grid.
    pub grid_cols: usize,
    /// The simulation on the data set (`lab5 label --simulate`).
    pub simulation: LabelSimulation,
}

impl Default for Label {
    /// The values of the shipped `config.json` (for config files older than the section).
    fn default() -> Self {
        Label {
            folder: None,
            demo_photos: 48,
            out_dir: None,
            k: 10,
            strategy: "uncertainty".into(),
            diverse_pool: 5,
            c: 1.0,
            seed: 42,
            grid_cols: 5,
            simulation: LabelSimulation::default(),
        }
    }
}

/// The simulated labelling of the data set: its labels hidden, a person's answers taken
/// from them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelSimulation {
    /// Repetitions, each with its own pool and random picks (seeds `label.seed + i`).
    pub seeds: usize,
    /// Share of the data set drawn as each repetition's pool of unlabelled photos.
    pub pool_fraction: f64,
    /// Human labels at which the accuracy is tabulated (the curve has every round).
    pub budgets: Vec<usize>,
    /// Strategies compared (`uncertainty`, `random`, `diverse`).
    pub strategies: Vec<String>,
    /// Starting points compared: `zero-shot` (the ImageNet head's cat/dog direction) and
    /// `none` (features only, from zero weights).
    pub priors: Vec<String>,
    /// The accuracy the answers are asked for ("how many labels reach 99 %").
    pub target_accuracy: f64,
}

impl Default for LabelSimulation {
    fn default() -> Self {
        LabelSimulation {
            seeds: 5,
            pool_fraction: 0.8,
            budgets: vec![0, 10, 20, 50, 100, 200],
            strategies: vec!["uncertainty".into(), "random".into()],
            priors: vec!["zero-shot".into(), "none".into()],
            target_accuracy: 0.99,
        }
    }
}

/// Strategies a labelling round may use.
pub const LABEL_STRATEGIES: [&str; 3] = ["uncertainty", "random", "diverse"];
/// Starting points of the labelling classifier.
pub const LABEL_PRIORS: [&str; 2] = ["zero-shot", "none"];

/// Every constant of the lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Folders.
    pub paths: Paths,
    /// Data set.
    pub data: Data,
    /// API client.
    pub api: Api,
    /// The decoding policy (optional in older files: defaults apply).
    #[serde(default)]
    pub images: Images,
    /// Preprocessing.
    pub preprocess: Preprocess,
    /// Augmentation.
    pub augment: Augment,
    /// CNN from scratch.
    pub cnn: Cnn,
    /// Transfer learning.
    pub transfer: Transfer,
    /// Label check.
    pub audit: Audit,
    /// Embedding projections.
    pub embed: Embed,
    /// Comparison and report (optional in older files: defaults apply).
    #[serde(default)]
    pub report: Report,
    /// Ablation study (optional in older files: defaults apply).
    #[serde(default)]
    pub ablation: Ablation,
    /// Labelling a folder without labels (optional in older files: defaults apply).
    #[serde(default)]
    pub label: Label,
    /// Grad-CAM overlays (optional in older files: defaults apply).
    #[serde(default)]
    pub explain: Explain,
    /// TensorBoard.
    pub tensorboard: TensorBoard,
    /// Device and threads.
    pub runtime: Runtime,
    /// Folder of the config file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// serde default for flags that are on unless a file says otherwise.
fn yes() -> bool {
    true
}

fn invalid(key: &str, value: impl std::fmt::Display, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        allowed: allowed.to_string(),
    }
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(invalid(key, &v, &format!("{lo} ..= {hi}")))
    }
}

fn check_one_of(key: &str, v: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, format!("{v:?}"), &allowed.join(", ")))
    }
}

impl Config {
    /// Reads and validates a config file. A file with a top-level `"extends": "FILE"`
    /// holds only changes to FILE (read relative to its folder, and may extend another):
    /// objects are merged key by key, any other value replaces FILE's.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let at_path = |e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        };
        let text = read_text(path)?;
        let mut cfg = match extends_of(path, &text)? {
            None => Self::from_json(&text).map_err(at_path)?,
            Some(_) => Self::from_value(read_merged(path, 0)?).map_err(at_path)?,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        cfg.base_dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        };
        Ok(cfg)
    }

    /// Parses and validates JSON text (relative paths resolve against the current folder).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let given: serde_json::Value = serde_json::from_str(text).map_err(parse_error)?;
        Self::from_value(given)
    }

    /// Like [`Config::from_json`], from a parsed JSON value. Unknown keys are refused by
    /// name: serde's `deny_unknown_fields` cannot be combined with the flattened training
    /// settings, so the parsed config is serialised back and compared key by key.
    fn from_value(given: serde_json::Value) -> Result<Self, ConfigError> {
        let cfg: Config =
            serde_path_to_error::deserialize(given.clone()).map_err(|e| type_error(&given, e))?;
        let parsed = serde_json::to_value(&cfg).map_err(parse_error)?;
        if let Some(key) = unknown_key(&given, &parsed, "") {
            let (section, field) = key.rsplit_once('.').unwrap_or(("", &key));
            let place = if section.is_empty() {
                "the top level".to_string()
            } else {
                format!("`{section}`")
            };
            return Err(ConfigError::Parse {
                path: PathBuf::from("<text>"),
                message: format!("unknown field `{field}` in {place}"),
            });
        }
        cfg.validated()
    }

    fn validated(mut self) -> Result<Self, ConfigError> {
        self.base_dir = PathBuf::from(".");
        self.validate()?;
        Ok(self)
    }

    /// Finds the config file: `explicit`, else `$LAB5_CONFIG`, else `config.json` in the
    /// current folder or the nearest ancestor that has one.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        if let Some(p) = std::env::var_os(CONFIG_ENV) {
            return PathBuf::from(p);
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        cwd.ancestors()
            .map(|d| d.join("config.json"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("config.json"))
    }

    /// Checks every value against its allowed range.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_data()?;
        self.validate_api()?;
        self.validate_images()?;
        self.validate_cnn()?;
        self.validate_transfer()?;
        self.validate_rest()
    }

    fn validate_data(&self) -> Result<(), ConfigError> {
        check_range("data.per_class", self.data.per_class, 1, 100_000)?;
        let near = self.data.near_duplicate_distance;
        check_range("data.near_duplicate_distance", near, 0, 64)?;
        let s = self.data.split;
        check_range("data.split.train", s.train, 0.05, 0.98)?;
        check_range("data.split.val", s.val, 0.01, 0.9)?;
        check_range("data.split.test", s.test, 0.01, 0.9)?;
        let sum = s.train + s.val + s.test;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(invalid("data.split", sum, "train + val + test = 1"));
        }
        self.validate_unseen_breeds()
    }

    /// The share's range and the names' form; whether each name is a breed of the data
    /// set is checked where the manifest is known ([`crate::data::holdout`]).
    fn validate_unseen_breeds(&self) -> Result<(), ConfigError> {
        let d = &self.data;
        check_range("data.unseen_breed_share", d.unseen_breed_share, 0.0, 0.5)?;
        let mut seen = std::collections::HashSet::new();
        for name in &d.unseen_breeds {
            if name.trim().is_empty() {
                let v = format!("{name:?}");
                return Err(invalid("data.unseen_breeds", v, "non-empty breed names"));
            }
            if !seen.insert(name.trim().to_lowercase()) {
                let v = format!("{name:?} twice");
                return Err(invalid("data.unseen_breeds", v, "each breed once"));
            }
        }
        Ok(())
    }

    fn validate_api(&self) -> Result<(), ConfigError> {
        let a = &self.api;
        for (key, host) in [("api.cat", &a.cat), ("api.dog", &a.dog)] {
            let url = host.base_url.as_str();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(&format!("{key}.base_url"), url, "an http(s) URL"));
            }
            let env_ok = !host.key_env.is_empty()
                && host
                    .key_env
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !env_ok {
                let k = format!("{key}.key_env");
                return Err(invalid(&k, &host.key_env, "a variable name [A-Za-z0-9_]+"));
            }
        }
        check_range("api.page_size", a.page_size, 1, 100)?;
        check_one_of("api.order", &a.order, &["RANDOM", "ASC", "DESC"])?;
        check_one_of("api.size", &a.size, &["thumb", "small", "med", "full"])?;
        check_range("api.concurrency", a.concurrency, 1, 64)?;
        check_range("api.timeout_secs", a.timeout_secs, 1, 600)?;
        check_range("api.retries", a.retries, 0, 20)?;
        check_range("api.backoff_ms", a.backoff_ms, 1, 60_000)?;
        check_range(
            "api.max_backoff_ms",
            a.max_backoff_ms,
            a.backoff_ms,
            600_000,
        )?;
        check_range("api.max_image_bytes", a.max_image_bytes, 1024, 1 << 30)?;
        check_range("api.request_budget", a.request_budget, 1, 100_000)
    }

    fn validate_images(&self) -> Result<(), ConfigError> {
        let i = &self.images;
        check_range("images.max_pixels", i.max_pixels, 1_000_000, MAX_PIXELS)?;
        check_range("images.min_side", i.min_side, 1, 1024)?;
        check_range(
            "images.max_aspect_ratio",
            i.max_aspect_ratio,
            1.0,
            MAX_ASPECT_RATIO,
        )?;
        let p = &self.preprocess;
        check_range("preprocess.image_size", p.image_size, 16, 1024)?;
        check_range(
            "preprocess.resize_shorter",
            p.resize_shorter,
            p.image_size,
            2048,
        )?;
        let a = &self.augment;
        check_range("augment.shift", a.shift, 0.0, 0.25)?;
        check_range("augment.crop_scale_min", a.crop_scale_min, 0.05, 1.0)?;
        check_range("augment.crop_ratio_min", a.crop_ratio_min, 0.2, 1.0)?;
        check_range("augment.crop_ratio_max", a.crop_ratio_max, 1.0, 5.0)?;
        check_range("augment.brightness", a.brightness, 0.0, 1.0)?;
        check_range("augment.contrast", a.contrast, 0.0, 1.0)?;
        check_range("augment.saturation", a.saturation, 0.0, 1.0)?;
        check_range("augment.rotate", a.rotate, 0.0, 180.0)?;
        check_range("augment.blur", a.blur, 0.0, 1.0)?;
        check_range("augment.blur_sigma", a.blur_sigma, 0.1, 10.0)?;
        check_range("augment.noise", a.noise, 0.0, 1.0)?;
        check_range("augment.noise_std", a.noise_std, 0.0, 1.0)?;
        check_range("augment.downscale", a.downscale, 0.0, 1.0)?;
        check_range("augment.downscale_min", a.downscale_min, 0.1, 1.0)?;
        if a.crop_source != 0 {
            check_range(
                "augment.crop_source",
                a.crop_source,
                self.preprocess.image_size,
                1024,
            )?;
        }
        if a.train_size != 0 {
            check_range(
                "augment.train_size",
                a.train_size,
                16,
                self.preprocess.image_size,
            )?;
        }
        check_range("augment.mix_prob", a.mix_prob, 0.0, 1.0)?;
        check_range("augment.mixup_alpha", a.mixup_alpha, 0.0, 10.0)?;
        check_range("augment.cutmix_alpha", a.cutmix_alpha, 0.0, 10.0)?;
        let alphas = a.mixup_alpha > 0.0 || a.cutmix_alpha > 0.0;
        if a.mix_prob > 0.0 && !alphas {
            return Err(invalid(
                "augment.mix_prob",
                a.mix_prob,
                "0 unless augment.mixup_alpha or augment.cutmix_alpha is above 0",
            ));
        }
        if a.mix_prob == 0.0 && alphas {
            // timm's Mixup mixes every batch by default; here an alpha alone would do nothing
            return Err(invalid(
                "augment.mix_prob",
                a.mix_prob,
                "above 0 (e.g. 0.5) when augment.mixup_alpha or augment.cutmix_alpha is set; 0 mixes no batch",
            ));
        }
        check_range("augment.grayscale", a.grayscale, 0.0, 1.0)
    }

    fn validate_cnn(&self) -> Result<(), ConfigError> {
        let c = &self.cnn;
        if c.channels.len() < 4 || c.channels.len() > 8 {
            let v = format!("{:?}", c.channels);
            return Err(invalid("cnn.channels", v, "4 to 8 conv blocks"));
        }
        for (i, ch) in c.channels.iter().enumerate() {
            check_range(&format!("cnn.channels[{i}]"), *ch, 4, 1024)?;
        }
        check_range("cnn.embedding_dim", c.embedding_dim, 2, 4096)?;
        check_range("cnn.dropout", c.dropout, 0.0, 0.95)?;
        check_range("cnn.stem_stride", c.stem_stride, 1, 2)?;
        let blocks = c.channels.len();
        for (i, b) in c.residual_after.iter().enumerate() {
            check_range(&format!("cnn.residual_after[{i}]"), *b, 1, blocks)?;
        }
        if c.residual_after.windows(2).any(|w| w[0] >= w[1]) {
            let v = format!("{:?}", c.residual_after);
            return Err(invalid(
                "cnn.residual_after",
                v,
                "block numbers in increasing order, each once",
            ));
        }
        check_range("ablation.epochs", self.ablation.epochs, 1, 10_000)?;
        check_range("ablation.image_size", self.ablation.image_size, 0, 1024)?;
        self.validate_input_sides()?;
        c.train.validate("cnn")
    }

    /// The smallest input side the CNN of this config takes, in px: each conv block
    /// halves the side (its max-pool rounds down, the strided stem rounds up, so
    /// 2^blocks px is enough for both), and a residual block after block K needs maps of
    /// at least 2×2 there, 2^(K+1) px (its batch-norm would average one value per channel
    /// for a last batch of one photo).
    pub fn min_input_side(&self) -> i64 {
        let blocks = self.cnn.channels.len() as u32;
        let residual = self.cnn.residual_after.iter().max();
        let residual = residual.map_or(0, |&k| 1_i64 << (k as u32 + 1));
        (1_i64 << blocks).max(residual)
    }

    /// Every side the CNN is fed ([`Config::min_input_side`]): the evaluation side, the
    /// training side and the ablation's side, which keeps `augment.train_size` (it must
    /// then fit the ablation's smaller photos).
    fn validate_input_sides(&self) -> Result<(), ConfigError> {
        let min = self.min_input_side();
        let why = format!("at least {min} px: each conv block of cnn.channels halves the side, and a block of cnn.residual_after needs 2x2 maps");
        let sides = [
            ("preprocess.image_size", self.preprocess.image_size),
            ("augment.train_size", self.augment.train_size),
            ("ablation.image_size", self.ablation.image_size),
        ];
        for (key, side) in sides {
            if side != 0 && side < min {
                return Err(invalid(key, side, &why));
            }
        }
        let (train, ablation) = (self.augment.train_size, self.ablation.image_size);
        if train != 0 && ablation != 0 && train > ablation {
            return Err(invalid(
                "augment.train_size",
                train,
                &format!("at most ablation.image_size ({ablation} px): the ablation trains at train_size and evaluates at its own side"),
            ));
        }
        Ok(())
    }

    fn validate_transfer(&self) -> Result<(), ConfigError> {
        let t = &self.transfer;
        check_one_of(
            "transfer.backbone",
            &t.backbone,
            &["efficientnet_lite0", "resnet18"],
        )?;
        check_range("transfer.image_size", t.image_size, 32, 1024)?;
        check_range(
            "transfer.resize_shorter",
            t.resize_shorter,
            t.image_size,
            2048,
        )?;
        check_range("transfer.hidden", t.hidden, 2, 8192)?;
        check_range("transfer.embedding_dim", t.embedding_dim, 2, 4096)?;
        check_range("transfer.dropout", t.dropout, 0.0, 0.95)?;
        t.train.validate("transfer")?;
        check_range(
            "transfer.backbone_batch_size",
            t.backbone_batch_size,
            1,
            1024,
        )?;
        check_range("transfer.unfreeze_blocks", t.unfreeze_blocks, 0, 16)
    }

    fn validate_rest(&self) -> Result<(), ConfigError> {
        check_range("audit.min_margin", self.audit.min_margin, 0.0, 1.0)?;
        check_range(
            "audit.neither_threshold",
            self.audit.neither_threshold,
            0.0,
            1.0,
        )?;
        check_range(
            "audit.min_neighbour_share",
            self.audit.min_neighbour_share,
            0.0,
            1.0,
        )?;
        check_range("audit.neighbours", self.audit.neighbours, 1, 100)?;
        let e = &self.embed;
        check_range("embed.tsne_perplexity", e.tsne_perplexity, 2.0, 100.0)?;
        check_range("embed.tsne_theta", e.tsne_theta, 0.0, 1.0)?;
        check_range("embed.tsne_epochs", e.tsne_epochs, 50, 10_000)?;
        check_range("embed.umap_neighbors", e.umap_neighbors, 2, 200)?;
        check_range("embed.umap_min_dist", e.umap_min_dist, 0.0, 1.0)?;
        check_range("embed.umap_epochs", e.umap_epochs, 10, 10_000)?;
        check_range("embed.knn_k", e.knn_k, 1, 100)?;
        self.validate_report()?;
        self.validate_label()?;
        self.validate_tensorboard()?;
        self.validate_runtime()
    }

    fn validate_tensorboard(&self) -> Result<(), ConfigError> {
        let t = &self.tensorboard;
        let plain = !t.subdir.is_empty()
            && t.subdir
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !plain || t.subdir.starts_with('.') {
            return Err(invalid(
                "tensorboard.subdir",
                &t.subdir,
                "a plain folder name",
            ));
        }
        check_range("tensorboard.histogram_bins", t.histogram_bins, 0, 1000)?;
        check_range("tensorboard.batch_images", t.batch_images, 0, 1024)?;
        check_range("tensorboard.thumbnail", t.thumbnail, 8, 256)?;
        check_range("tensorboard.port", t.port, 1, 65535)
    }

    fn validate_label(&self) -> Result<(), ConfigError> {
        let l = &self.label;
        check_range("label.demo_photos", l.demo_photos, 1, 10_000)?;
        check_range("label.k", l.k, 1, 1000)?;
        check_one_of("label.strategy", &l.strategy, &LABEL_STRATEGIES)?;
        check_range("label.diverse_pool", l.diverse_pool, 1, 100)?;
        check_range("label.c", l.c, 1e-6, 1e6)?;
        check_range("label.grid_cols", l.grid_cols, 1, 20)?;
        let s = &l.simulation;
        check_range("label.simulation.seeds", s.seeds, 1, 100)?;
        check_range("label.simulation.pool_fraction", s.pool_fraction, 0.05, 1.0)?;
        check_range(
            "label.simulation.target_accuracy",
            s.target_accuracy,
            0.5,
            1.0,
        )?;
        if s.budgets.is_empty() || s.budgets.windows(2).any(|w| w[0] >= w[1]) {
            let v = format!("{:?}", s.budgets);
            return Err(invalid("label.simulation.budgets", v, "increasing numbers"));
        }
        for (key, list, allowed) in [
            (
                "label.simulation.strategies",
                &s.strategies,
                &LABEL_STRATEGIES[..],
            ),
            ("label.simulation.priors", &s.priors, &LABEL_PRIORS[..]),
        ] {
            if list.is_empty() {
                return Err(invalid(key, "[]", &allowed.join(", ")));
            }
            list.iter()
                .try_for_each(|v| check_one_of(key, v, allowed))?;
        }
        Ok(())
    }

    fn validate_report(&self) -> Result<(), ConfigError> {
        let r = &self.report;
        check_range("report.inference_images", r.inference_images, 1, 100_000)?;
        check_range("report.sample_photos", r.sample_photos, 0, 200)?;
        check_range("report.mistakes", r.mistakes, 0, 200)?;
        check_range("report.flagged_photos", r.flagged_photos, 0, 500)?;
        check_range("report.grid_cols", r.grid_cols, 1, 20)?;
        check_range("report.overfit_gap", r.overfit_gap, 0.0, 1.0)?;
        check_range("report.significance", r.significance, 0.001, 0.5)?;
        check_range("report.calibration_bins", r.calibration_bins, 2, 50)?;
        check_range("report.worst_breeds", r.worst_breeds, 1, 100)?;
        check_range("explain.overlay_size", self.explain.overlay_size, 32, 2048)?;
        check_range("explain.opacity", self.explain.opacity, 0.0, 1.0)?;
        check_range("explain.max_photos", self.explain.max_photos, 1, 500)
    }

    fn validate_runtime(&self) -> Result<(), ConfigError> {
        let d = self.runtime.device.as_str();
        let cuda_n = d
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok());
        if !(matches!(d, "auto" | "cpu" | "cuda") || cuda_n) {
            return Err(invalid("runtime.device", d, "auto, cpu, cuda, cuda:N"));
        }
        check_range("runtime.threads", self.runtime.threads, 1, 256)
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The data folder (images, manifest, caches).
    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.paths.data_dir)
    }

    /// The runs folder.
    pub fn runs_dir(&self) -> PathBuf {
        self.resolve(&self.paths.runs_dir)
    }

    /// The folder of pretrained weights: `paths.weights_dir` or `$LAB5_HOME/weights`.
    pub(crate) fn weights_dir(&self) -> PathBuf {
        match &self.paths.weights_dir {
            Some(p) => self.resolve(p),
            None => lab5_home().join("weights"),
        }
    }

    /// The config as pretty JSON with every key, including those that recorded runs leave
    /// out at their off value (`augment.train_size` 0, `cnn.stem_stride` 1, ...): what
    /// `lab5 config check` prints and the report shows.
    pub fn to_pretty_json(&self) -> String {
        let _every_key = EveryKey::set();
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Train {
    /// Checks each setting, naming keys `<section>.<key>`.
    fn validate(&self, section: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{section}.{k}");
        check_range(&key("epochs"), self.epochs, 1, 10_000)?;
        check_range(&key("batch_size"), self.batch_size, 1, 4096)?;
        check_range(&key("max_lr"), self.max_lr, 1e-7, 1.0)?;
        check_range(&key("weight_decay"), self.weight_decay, 0.0, 1.0)?;
        check_range(&key("patience"), self.patience, 1, 1000)?;
        check_range(&key("label_smoothing"), self.label_smoothing, 0.0, 0.5)?;
        check_range(&key("ema_decay"), self.ema_decay, 0.0, 0.99999)
    }
}

/// The keys that are left out of the written config at their "off" value
/// (`skip_serializing_if`, so that runs trained before they existed keep their keys): one
/// written out at that value is missing from the round trip but known.
const OFF_BY_DEFAULT: &[&str] = &[
    "augment.train_size",
    "augment.mix_prob",
    "augment.mixup_alpha",
    "augment.cutmix_alpha",
    "cnn.precise_bn",
    "cnn.stem_stride",
    "cnn.residual_after",
];

/// The first key of `given` (the JSON as written) that the parsed config does not have
/// (`parsed`, the config serialised back), as a dotted path. serde's
/// `deny_unknown_fields` cannot be combined with `#[serde(flatten)]`; this check covers
/// every section the same way.
fn unknown_key(given: &serde_json::Value, parsed: &serde_json::Value, at: &str) -> Option<String> {
    let (Some(given), Some(parsed)) = (given.as_object(), parsed.as_object()) else {
        return None;
    };
    given.iter().find_map(|(k, v)| {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        match parsed.get(k) {
            None if OFF_BY_DEFAULT.contains(&path.as_str()) => None,
            None => Some(path),
            Some(p) => unknown_key(v, p, &path),
        }
    })
}

/// A value serde could not read (wrong type, missing key), naming its key. Inside the
/// flattened training settings (`cnn.epochs`, `transfer.max_lr`) serde's path stops at
/// the section, so the section is read again as [`Train`] alone to find the key.
fn type_error(
    given: &serde_json::Value,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> ConfigError {
    let mut key = e.path().to_string();
    if matches!(key.as_str(), "cnn" | "transfer") {
        if let Err(inner) = serde_path_to_error::deserialize::<_, Train>(given[&key].clone()) {
            let at = inner.path().to_string();
            // the same error found inside the training settings, not another one
            if at != "." && inner.inner().to_string() == e.inner().to_string() {
                key = format!("{key}.{at}");
            }
        }
    }
    let e = e.into_inner();
    ConfigError::Parse {
        path: PathBuf::from("<text>"),
        message: if key == "." {
            e.to_string()
        } else {
            format!("`{key}`: {e}")
        },
    }
}

fn parse_error(e: serde_json::Error) -> ConfigError {
    ConfigError::Parse {
        path: PathBuf::from("<text>"),
        message: e.to_string(),
    }
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The file named by the `extends` key of the config text read from `path`, if any.
fn extends_of(path: &Path, text: &str) -> Result<Option<PathBuf>, ConfigError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let Some(base) = v.get(EXTENDS_KEY) else {
        return Ok(None);
    };
    let Some(name) = base.as_str().filter(|n| !n.is_empty()) else {
        return Err(invalid(
            EXTENDS_KEY,
            base,
            "the name of another config file",
        ));
    };
    Ok(Some(path.parent().unwrap_or(Path::new(".")).join(name)))
}

/// The JSON of `path` merged over the file it extends (recursively, `depth` files deep).
fn read_merged(path: &Path, depth: usize) -> Result<serde_json::Value, ConfigError> {
    let text = read_text(path)?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let Some(base) = extends_of(path, &text)? else {
        return Ok(value);
    };
    if depth + 1 >= MAX_EXTENDS {
        let chain = format!("{} (and the files it extends)", path.display());
        return Err(invalid(
            EXTENDS_KEY,
            chain,
            "at most 8 files in a chain, no loop",
        ));
    }
    if let Some(o) = value.as_object_mut() {
        o.remove(EXTENDS_KEY);
    }
    let mut merged = read_merged(&base, depth + 1)?;
    merge(&mut merged, value);
    Ok(merged)
}

/// Puts `over` onto `base`: objects key by key, anything else replaced.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// `$LAB5_HOME`, or `~/.cache/lab5`: where the setup keeps the venv, weights and caches.
pub fn lab5_home() -> PathBuf {
    if let Some(p) = std::env::var_os("LAB5_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache").join("lab5")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap()
    }

    fn with(path: &[&str], value: serde_json::Value) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&shipped()).unwrap();
        let mut cur = &mut v;
        for k in &path[..path.len() - 1] {
            cur = cur.get_mut(*k).unwrap();
        }
        cur[path[path.len() - 1]] = value;
        v.to_string()
    }

    #[test]
    fn shipped_config_is_valid_with_lab_defaults() {
        let c = Config::from_json(&shipped()).unwrap();
        assert_eq!(c.data.per_class, 1050);
        assert!(c.cnn.train.epochs >= 30 && c.transfer.train.epochs >= 30);
        assert!(c.cnn.channels.len() >= 4);
    }

    #[test]
    fn input_sides_must_survive_the_conv_blocks() {
        // 5 blocks by default: 32 px is the smallest side that leaves a 1x1 map
        for key in ["train_size", "image_size"] {
            let section = if key == "train_size" {
                "augment"
            } else {
                "ablation"
            };
            let err = Config::from_json(&with(&[section, key], 16.into())).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("`{section}.{key}`")), "{text}");
            assert!(text.contains("at least 32 px"), "{text}");
            assert!(Config::from_json(&with(&[section, key], 32.into())).is_ok());
        }
        let err = Config::from_json(&with(&["preprocess", "image_size"], 16.into())).unwrap_err();
        assert!(err.to_string().contains("`preprocess.image_size`"), "{err}");
        // a residual block after the last of five blocks needs 2x2 maps there: 64 px
        let mut v: serde_json::Value = serde_json::from_str(&shipped()).unwrap();
        v["cnn"]["residual_after"] = serde_json::json!([5]);
        v["augment"]["train_size"] = 48.into();
        let err = Config::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("at least 64 px"), "{err}");
        // four blocks need only 16 px
        let mut v: serde_json::Value = serde_json::from_str(&shipped()).unwrap();
        v["cnn"]["channels"] = serde_json::json!([32, 64, 128, 256]);
        v["augment"]["train_size"] = 16.into();
        assert!(Config::from_json(&v.to_string()).is_ok());
        // the ablation keeps train_size, so it must fit the ablation's photos
        v["augment"]["train_size"] = 96.into();
        v["ablation"]["image_size"] = 64.into();
        let err = Config::from_json(&v.to_string()).unwrap_err();
        assert!(
            err.to_string().contains("at most ablation.image_size"),
            "{err}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        let cases: [(&[&str], serde_json::Value, &str); 6] = [
            (&["augment", "mix_prob"], "0.5".into(), "`augment.mix_prob`"),
            (&["cnn", "epochs"], "2".into(), "`cnn.epochs`"),
            (&["transfer", "max_lr"], "0.001".into(), "`transfer.max_lr`"),
            (&["cnn", "stem_stride"], "2".into(), "`cnn.stem_stride`"),
            (&["cnn", "residual_after"], 2.into(), "`cnn.residual_after`"),
            (
                &["data", "split", "train"],
                true.into(),
                "`data.split.train`",
            ),
        ];
        for (path, value, key) in cases {
            let err = Config::from_json(&with(path, value))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains("invalid type"), "{err}");
        }
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = Config::from_json(&with(&["cnn", "epoch"], 3.into())).unwrap_err();
        assert!(err.to_string().contains("unknown field `epoch`"), "{err}");
    }

    #[test]
    fn off_by_default_keys_may_be_written_at_their_off_value() {
        let off: [(&[&str], serde_json::Value); 7] = [
            (&["augment", "train_size"], 0.into()),
            (&["augment", "mix_prob"], 0.0.into()),
            (&["augment", "mixup_alpha"], 0.0.into()),
            (&["augment", "cutmix_alpha"], 0.into()),
            (&["cnn", "precise_bn"], false.into()),
            (&["cnn", "stem_stride"], 1.into()),
            (&["cnn", "residual_after"], serde_json::json!([])),
        ];
        for (path, value) in &off {
            let cfg = Config::from_json(&with(path, value.clone()));
            assert!(cfg.is_ok(), "{path:?} = {value}: {}", cfg.unwrap_err());
        }
        // and the list names every such key: one per `skip_serializing_if` in this file
        let attribute = concat!("skip_serializing", "_if = \"");
        let declared = include_str!("config.rs").matches(attribute).count();
        assert_eq!(declared, OFF_BY_DEFAULT.len());
        assert_eq!(off.len(), OFF_BY_DEFAULT.len());
        // `config check` shows them, and what it prints reads back as the same config
        let shipped_cfg = Config::from_json(&shipped()).unwrap();
        let printed = shipped_cfg.to_pretty_json();
        let v: serde_json::Value = serde_json::from_str(&printed).unwrap();
        for key in OFF_BY_DEFAULT {
            let (section, field) = key.split_once('.').unwrap();
            assert!(
                v[section].get(field).is_some(),
                "{key} missing from\n{printed}"
            );
        }
        let again = Config::from_json(&printed).unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&shipped_cfg).unwrap()
        );
        // while run keys still leave them out
        let run_key = serde_json::to_value(&shipped_cfg).unwrap();
        assert!(run_key["cnn"].get("stem_stride").is_none());
        // a misspelt key next to them is still refused
        let err = Config::from_json(&with(&["cnn", "stem_strid"], 1.into())).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `stem_strid`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_is_rejected() {
        let err = Config::from_json(&with(&["cnn", "epochs"], "many".into())).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn out_of_range_names_key_value_and_range() {
        let err = Config::from_json(&with(&["cnn", "epochs"], 0.into())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`cnn.epochs`") && msg.contains("value 0"),
            "{msg}"
        );
        assert!(msg.contains("1 ..= 10000"), "{msg}");
    }

    #[test]
    fn split_must_sum_to_one() {
        let err = Config::from_json(&with(&["data", "split", "test"], 0.3.into())).unwrap_err();
        assert!(err.to_string().contains("`data.split`"), "{err}");
    }

    #[test]
    fn unseen_breed_keys_default_to_none_and_are_checked() {
        let mut v: serde_json::Value = serde_json::from_str(&shipped()).unwrap();
        let data = v["data"].as_object_mut().unwrap();
        data.remove("unseen_breeds");
        data.remove("unseen_breed_share");
        let old = Config::from_json(&v.to_string()).unwrap();
        assert!(old.data.unseen_breeds.is_empty() && old.data.unseen_breed_share == 0.0);
        assert_eq!(old.data, Config::from_json(&shipped()).unwrap().data);
        let share = with(&["data", "unseen_breed_share"], 0.9.into());
        let err = Config::from_json(&share).unwrap_err().to_string();
        assert!(
            err.contains("`data.unseen_breed_share`") && err.contains("0 ..= 0.5"),
            "{err}"
        );
        let twice = with(
            &["data", "unseen_breeds"],
            serde_json::json!(["Pug", "pug"]),
        );
        let err = Config::from_json(&twice).unwrap_err().to_string();
        assert!(
            err.contains("`data.unseen_breeds`") && err.contains("\"pug\" twice"),
            "{err}"
        );
        let blank = with(&["data", "unseen_breeds"], serde_json::json!([" "]));
        assert!(Config::from_json(&blank).is_err());
    }

    #[test]
    fn stem_stride_and_residual_blocks_are_checked() {
        let err = Config::from_json(&with(&["cnn", "stem_stride"], 3.into())).unwrap_err();
        assert!(
            err.to_string().contains("`cnn.stem_stride`") && err.to_string().contains("1 ..= 2"),
            "{err}"
        );
        let blocks = Config::from_json(&shipped()).unwrap().cnn.channels.len();
        let past = serde_json::json!([blocks + 1]);
        let err = Config::from_json(&with(&["cnn", "residual_after"], past)).unwrap_err();
        assert!(err.to_string().contains("`cnn.residual_after[0]`"), "{err}");
        let unordered = serde_json::json!([3, 2]);
        let err = Config::from_json(&with(&["cnn", "residual_after"], unordered)).unwrap_err();
        assert!(err.to_string().contains("increasing order"), "{err}");
        let twice = serde_json::json!([2, 2]);
        assert!(Config::from_json(&with(&["cnn", "residual_after"], twice)).is_err());
    }

    #[test]
    fn batch_mixing_is_checked_and_stays_out_of_the_written_config_when_off() {
        let err = Config::from_json(&with(&["augment", "mix_prob"], 1.5.into())).unwrap_err();
        assert!(err.to_string().contains("`augment.mix_prob`"), "{err}");
        // a probability without a kind of mixing would silently do nothing
        let err = Config::from_json(&with(&["augment", "mix_prob"], 0.5.into())).unwrap_err();
        assert!(err.to_string().contains("cutmix_alpha"), "{err}");
        let err =
            Config::from_json(&with(&["augment", "cutmix_alpha"], (-1.0).into())).unwrap_err();
        assert!(err.to_string().contains("`augment.cutmix_alpha`"), "{err}");
        let err = Config::from_json(&with(&["augment", "mixup_alpha"], 11.0.into())).unwrap_err();
        assert!(err.to_string().contains("`augment.mixup_alpha`"), "{err}");
        // an alpha without a probability would silently mix nothing
        let err = Config::from_json(&with(&["augment", "cutmix_alpha"], 1.0.into())).unwrap_err();
        assert!(err.to_string().contains("`augment.mix_prob`"), "{err}");
        let mut on: serde_json::Value =
            serde_json::from_str(&with(&["augment", "mix_prob"], 0.5.into())).unwrap();
        on["augment"]["cutmix_alpha"] = 1.0.into();
        let cfg = Config::from_json(&on.to_string()).unwrap();
        assert_eq!((cfg.augment.mix_prob, cfg.augment.cutmix_alpha), (0.5, 1.0));
        let shipped = Config::from_json(&shipped()).unwrap();
        let written = serde_json::to_value(&shipped.augment).unwrap();
        for key in ["mix_prob", "mixup_alpha", "cutmix_alpha"] {
            assert!(
                written.get(key).is_none(),
                "augment.{key} written while off"
            );
        }
        // the same for the CNN's off-by-default levers: old runs' keys stay the same
        let cnn = serde_json::to_value(&shipped.cnn).unwrap();
        for key in ["stem_stride", "residual_after", "precise_bn"] {
            assert!(cnn.get(key).is_none(), "cnn.{key} written while off");
        }
    }

    #[test]
    fn enum_values_are_checked() {
        let err = Config::from_json(&with(&["runtime", "device"], "tpu".into())).unwrap_err();
        assert!(err.to_string().contains("auto, cpu, cuda"), "{err}");
        let err = Config::from_json(&with(&["data", "source"], "ftp".into())).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        let err = Config::from_json(&with(&["cnn", "precision"], "fp16".into())).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown variant") && msg.contains("bf16"),
            "{msg}"
        );
    }

    #[test]
    fn report_section_defaults_to_the_shipped_values_when_missing() {
        let mut v: serde_json::Value = serde_json::from_str(&shipped()).unwrap();
        v.as_object_mut().unwrap().remove("report");
        let old = Config::from_json(&v.to_string()).unwrap();
        assert_eq!(old.report, Report::default());
        assert_eq!(old.report, Config::from_json(&shipped()).unwrap().report);
        let err = Config::from_json(&with(&["report", "grid_cols"], 0.into())).unwrap_err();
        assert!(err.to_string().contains("`report.grid_cols`"), "{err}");
    }

    #[test]
    fn label_section_defaults_to_the_shipped_values_and_is_checked() {
        let mut v: serde_json::Value = serde_json::from_str(&shipped()).unwrap();
        v.as_object_mut().unwrap().remove("label");
        let old = Config::from_json(&v.to_string()).unwrap();
        assert_eq!(old.label, Label::default());
        assert_eq!(old.label, Config::from_json(&shipped()).unwrap().label);
        let bad = [
            (
                vec!["label", "strategy"],
                serde_json::json!("smart"),
                "`label.strategy`",
            ),
            (vec!["label", "k"], 0.into(), "`label.k`"),
            (
                vec!["label", "simulation", "budgets"],
                serde_json::json!([0, 20, 10]),
                "`label.simulation.budgets`",
            ),
            (
                vec!["label", "simulation", "priors"],
                serde_json::json!(["zero-shot", "imagenet"]),
                "`label.simulation.priors`",
            ),
        ];
        for (key, value, named) in bad {
            let err = Config::from_json(&with(&key, value)).unwrap_err();
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn a_config_can_extend_another_with_only_its_changes() {
        let dir = std::env::temp_dir().join(format!("lab5-cfg-ext-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("base.json"), shipped()).unwrap();
        let over = r#"{"extends": "../base.json", "paths": {"runs_dir": "elsewhere"},
                       "data": {"unseen_breeds": ["Pug"]}}"#;
        std::fs::write(dir.join("sub/c.json"), over).unwrap();
        let c = Config::load(dir.join("sub/c.json")).unwrap();
        let base = Config::from_json(&shipped()).unwrap();
        assert_eq!(c.runs_dir(), dir.join("sub/elsewhere"));
        assert_eq!(
            (c.paths.data_dir.clone(), c.cnn.clone()),
            (base.paths.data_dir, base.cnn)
        );
        assert_eq!(
            (c.data.unseen_breeds.clone(), c.data.seed),
            (vec!["Pug".into()], 42)
        );
        std::fs::write(
            dir.join("sub/bad.json"),
            r#"{"extends": "../base.json", "cnn": {"epoch": 1}}"#,
        )
        .unwrap();
        let err = Config::load(dir.join("sub/bad.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.json") && err.contains("unknown field `epoch`"),
            "{err}"
        );
        std::fs::write(dir.join("loop.json"), r#"{"extends": "loop.json"}"#).unwrap();
        let err = Config::load(dir.join("loop.json")).unwrap_err().to_string();
        assert!(
            err.contains("`extends`") && err.contains("no loop"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_unseen_breeds_config_holds_a_share_out_in_its_own_folders() {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.unseen.json");
        let c = Config::load(p).unwrap();
        let base = Config::from_json(&shipped()).unwrap();
        assert!(c.data.unseen_breed_share > 0.0);
        assert_ne!(c.paths.data_dir, base.paths.data_dir);
        assert_ne!(c.paths.runs_dir, base.paths.runs_dir);
        assert_eq!((c.cnn, c.transfer), (base.cnn, base.transfer));
    }

    #[test]
    fn relative_paths_resolve_against_config_folder() {
        let dir = std::env::temp_dir().join(format!("lab5-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.json");
        std::fs::write(&p, shipped()).unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.data_dir(), dir.join("data"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
