//! What the trainer trains on, behind one small trait: [`ImageSet`] (uint8 image tensors
//! from the preprocessing cache, augmented on the fly by the loader) and [`FeatureSet`]
//! (float feature vectors, e.g. a frozen backbone's cached features, no augmentation).

use crate::config::{Augment, Config};
use crate::data::cache::{self, Cached, SplitTensors};
use crate::data::loader::{self, Normalize};
use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// One mini-batch: inputs and int64 labels (0 cat, 1 dog), on the training device.
pub(crate) type Batch = (Tensor, Tensor);

/// A labelled set of examples.
pub trait Dataset {
    /// Number of examples.
    fn len(&self) -> usize;
    /// True when there is no example.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Example ids (manifest ids), in evaluation order.
    fn ids(&self) -> &[String];
    /// Labels in evaluation order.
    fn labels(&self) -> Vec<i64>;
    /// One epoch of shuffled (and, where the set supports it, augmented) batches; `seed`
    /// fixes the order and the augmentation (use one seed per epoch).
    fn train_batches(
        &self,
        batch_size: usize,
        seed: u64,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_>;
    /// All examples in order, unchanged, in batches.
    fn eval_batches(
        &self,
        batch_size: usize,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_>;
    /// The inputs `x` of one of this set's batches as uint8 pixels `(B, 3, S, S)` on the
    /// CPU, to look at; `None` when the inputs are no images (feature vectors).
    fn pixels(&self, _x: &Tensor) -> Option<Tensor> {
        None
    }
}

/// Train, validation and test sets.
pub struct Splits {
    /// Training set (shuffled, augmented).
    pub train: Box<dyn Dataset>,
    /// Validation set (early stopping).
    pub val: Box<dyn Dataset>,
    /// Test set (reported only).
    pub test: Box<dyn Dataset>,
}

impl Splits {
    /// The three sets as `(name, set)`.
    pub(crate) fn named(&self) -> [(&'static str, &dyn Dataset); 3] {
        [
            ("train", &*self.train),
            ("val", &*self.val),
            ("test", &*self.test),
        ]
    }

    /// Fails with a clear message when a set is empty.
    pub(crate) fn check_not_empty(&self) -> Result<()> {
        for (name, set) in self.named() {
            if set.is_empty() {
                bail!("the {name} split has no image: check data.split in config.json and the manifest (`lab5 summary`)");
            }
        }
        Ok(())
    }
}

/// Images of one split with the augmentation applied to training batches.
pub struct ImageSet {
    split: SplitTensors,
    /// The same images at a larger side that training crops are cut from
    /// (`augment.crop_source`); `None`: crops come from `split` itself.
    crop_source: Option<SplitTensors>,
    /// Side of the training batches (`augment.train_size`); `None`: the split's side.
    train_size: Option<i64>,
    augment: Option<Augment>,
    norm: Normalize,
}

impl ImageSet {
    /// Wraps a split; `augment` is used by [`Dataset::train_batches`] only.
    pub(crate) fn new(split: SplitTensors, augment: Option<Augment>, norm: Normalize) -> Self {
        ImageSet {
            split,
            crop_source: None,
            train_size: None,
            augment,
            norm,
        }
    }

    /// The cached splits as image sets: training batches augmented with `augment`.
    pub fn splits(cached: Cached, augment: &Augment, norm: Normalize) -> Splits {
        let Cached { train, val, test } = cached;
        let train = ImageSet::new(train, Some(augment.clone()), norm);
        Self::assemble(train, val, test, norm)
    }

    /// As [`ImageSet::splits`], with training crops cut from `crop_source`'s train split
    /// (the same photos in the same order at a larger side) when given, and training
    /// batches `augment.train_size` pixels square when that is set; evaluation, including
    /// the train split's, still reads `cached` at its own side (the CNN's data).
    pub fn splits_with_source(
        cached: Cached,
        crop_source: Option<Cached>,
        augment: &Augment,
        norm: Normalize,
    ) -> Splits {
        let Cached { train, val, test } = cached;
        let mut train = ImageSet::new(train, Some(augment.clone()), norm);
        train.crop_source = crop_source.map(|c| c.train);
        train.train_size = (augment.train_size > 0).then_some(augment.train_size);
        Self::assemble(train, val, test, norm)
    }

    /// The training set as built, with unaugmented validation and test sets.
    fn assemble(train: ImageSet, val: SplitTensors, test: SplitTensors, norm: Normalize) -> Splits {
        Splits {
            train: Box::new(train),
            val: Box::new(ImageSet::new(val, None, norm)),
            test: Box::new(ImageSet::new(test, None, norm)),
        }
    }

    /// Side of the split's images in pixels.
    fn side(&self) -> i64 {
        self.split.images.size().last().copied().unwrap_or(0)
    }
}

impl Dataset for ImageSet {
    fn len(&self) -> usize {
        self.split.len()
    }

    fn ids(&self) -> &[String] {
        &self.split.ids
    }

    fn labels(&self) -> Vec<i64> {
        self.split.label_vec()
    }

    fn train_batches(
        &self,
        batch_size: usize,
        seed: u64,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_> {
        let aug = self.augment.as_ref();
        let from = match (&self.crop_source, aug) {
            (Some(source), Some(_)) => source,
            _ => &self.split,
        };
        let out_size = aug.and(self.train_size).unwrap_or(self.side());
        Box::new(loader::batches(
            from, batch_size, aug, out_size, &self.norm, seed, device,
        ))
    }

    fn pixels(&self, x: &Tensor) -> Option<Tensor> {
        (x.dim() == 4).then(|| loader::denormalize(x, &self.norm))
    }

    fn eval_batches(
        &self,
        batch_size: usize,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_> {
        Box::new(loader::batches(
            &self.split,
            batch_size,
            None,
            self.side(),
            &self.norm,
            0,
            device,
        ))
    }
}

/// What the training loader makes of one photo: the photo as evaluation sees it (the
/// cached crop, uint8 `(3, S, S)`, `S = preprocess.image_size`) and `n` augmented versions
/// of it, uint8 `(n, 3, T, T)` on the CPU (`T = augment.train_size`, or `S` when 0).
///
/// The versions are one training batch of `n` copies of the photo, made by the same
/// [`ImageSet`] and loader code as training with `cfg.augment` (crops from the
/// `augment.crop_source` image when set), then turned back into pixels; `seed` fixes the
/// draw (the pixel noise also reseeds libtorch's generator with it).
///
/// # Errors
/// The photo cannot be read, or `n` is 0.
pub fn augmentation_preview(
    cfg: &Config,
    photo: &Path,
    n: usize,
    seed: u64,
) -> Result<(Tensor, Tensor)> {
    if n == 0 {
        bail!("an augmentation preview needs at least one augmented version (n = 0)");
    }
    let p = &cfg.preprocess;
    let one = |size: i64, shorter: i64| -> Result<SplitTensors> {
        let x = cache::preprocess_file(photo, size, shorter)?;
        Ok(SplitTensors {
            images: x
                .unsqueeze(0)
                .expand([n as i64, 3, size, size], false)
                .contiguous(),
            labels: Tensor::zeros([n as i64], (Kind::Int64, Device::Cpu)),
            ids: vec![photo.display().to_string(); n],
        })
    };
    let split = one(p.image_size, p.resize_shorter)?;
    let original = split.images.get(0);
    let side = cfg.augment.crop_source;
    let mut set = ImageSet::new(split, Some(cfg.augment.clone()), super::run::cnn_norm());
    set.crop_source = (side > 0).then(|| one(side, side)).transpose()?;
    set.train_size = (cfg.augment.train_size > 0).then_some(cfg.augment.train_size);
    tch::manual_seed(seed as i64);
    let (x, _) = set
        .train_batches(n, seed, Device::Cpu)
        .next()
        .context("the loader gave no batch")?;
    let pixels = set
        .pixels(&x)
        .context("the training batch holds no images")?;
    Ok((original, pixels))
}

/// Float feature vectors `(N, D)` with labels, kept on the CPU until batched.
pub(crate) struct FeatureSet {
    features: Tensor,
    labels: Tensor,
    ids: Vec<String>,
}

impl FeatureSet {
    /// Checks that features, labels and ids agree in length.
    pub(crate) fn new(features: Tensor, labels: Tensor, ids: Vec<String>) -> Result<Self> {
        let (n, m) = (
            features.size().first().copied().unwrap_or(0),
            labels.numel(),
        );
        if n as usize != ids.len() || m != ids.len() || features.dim() != 2 {
            bail!("feature set: {n} rows of features, {m} labels, {} ids (need (N, D) features and N of each)", ids.len());
        }
        let features = features.to_kind(Kind::Float);
        Ok(FeatureSet {
            features,
            labels: labels.to_kind(Kind::Int64),
            ids,
        })
    }

    fn batch(&self, idx: &[i64], device: Device) -> Batch {
        let idx = Tensor::from_slice(idx);
        let x = self.features.index_select(0, &idx).to_device(device);
        (x, self.labels.index_select(0, &idx).to_device(device))
    }

    fn batches_of(
        &self,
        order: Vec<i64>,
        batch_size: usize,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_> {
        let chunks: Vec<Vec<i64>> = order
            .chunks(batch_size.max(1))
            .map(|c| c.to_vec())
            .collect();
        Box::new(chunks.into_iter().map(move |c| self.batch(&c, device)))
    }
}

impl Dataset for FeatureSet {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn ids(&self) -> &[String] {
        &self.ids
    }

    fn labels(&self) -> Vec<i64> {
        Vec::<i64>::try_from(&self.labels).unwrap_or_default()
    }

    fn train_batches(
        &self,
        batch_size: usize,
        seed: u64,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_> {
        let mut order: Vec<i64> = (0..self.len() as i64).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        self.batches_of(order, batch_size, device)
    }

    fn eval_batches(
        &self,
        batch_size: usize,
        device: Device,
    ) -> Box<dyn Iterator<Item = Batch> + '_> {
        self.batches_of((0..self.len() as i64).collect(), batch_size, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loader::IMAGENET;

    fn features() -> FeatureSet {
        let x = Tensor::arange(10, (Kind::Float, Device::Cpu)).view([5, 2]);
        let y = Tensor::from_slice(&[0i64, 1, 0, 1, 1]);
        FeatureSet::new(x, y, (0..5).map(|i| format!("f{i}")).collect()).unwrap()
    }

    fn split(n: i64, side: i64) -> SplitTensors {
        SplitTensors {
            images: Tensor::zeros([n, 3, side, side], (Kind::Uint8, Device::Cpu)),
            labels: Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(2),
            ids: (0..n).map(|i| format!("i{i}")).collect(),
        }
    }

    fn cached(side: i64) -> Cached {
        Cached {
            train: split(4, side),
            val: split(2, side),
            test: split(2, side),
        }
    }

    fn sides(batches: Box<dyn Iterator<Item = Batch> + '_>) -> Vec<i64> {
        batches.map(|(x, _)| x.size()[3]).collect()
    }

    #[test]
    fn train_size_shrinks_cnn_training_batches_only() {
        let cfg = crate::config::Config::from_json(include_str!("../../../config.json"));
        let mut a = cfg.unwrap().augment;
        a.train_size = 8;
        let cnn = ImageSet::splits_with_source(cached(16), None, &a, IMAGENET);
        assert_eq!(sides(cnn.train.train_batches(2, 1, Device::Cpu)), [8, 8]);
        assert_eq!(sides(cnn.train.eval_batches(2, Device::Cpu)), [16, 16]);
        assert_eq!(sides(cnn.val.eval_batches(2, Device::Cpu)), [16]);
        // The transfer model's sets (`splits`) keep training at the cached side.
        let transfer = ImageSet::splits(cached(16), &a, IMAGENET);
        assert_eq!(
            sides(transfer.train.train_batches(2, 1, Device::Cpu)),
            [16, 16]
        );
    }

    #[test]
    fn feature_batches_cover_every_row_once() {
        let f = features();
        let eval: Vec<Batch> = f.eval_batches(2, Device::Cpu).collect();
        assert_eq!(
            eval.iter().map(|b| b.0.size()[0]).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let first: Vec<f32> = Vec::try_from(eval[0].0.flatten(0, -1)).unwrap();
        assert_eq!(first, vec![0.0, 1.0, 2.0, 3.0]);
        let mut seen: Vec<i64> = f
            .train_batches(2, 7, Device::Cpu)
            .flat_map(|(x, _)| Vec::<f32>::try_from(x.select(1, 0)).unwrap())
            .map(|v| v as i64 / 2)
            .collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn mismatched_features_are_refused() {
        let x = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1]);
        assert!(FeatureSet::new(x, y, vec!["a".into(); 3]).is_err());
    }
}
