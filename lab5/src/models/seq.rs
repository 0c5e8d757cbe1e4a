//! `nn::seq_t()` that also remembers each layer's name and type, for the layer table
//! ([`super::Summary`]) and for [`super::Cnn::activations`]. Layers are named by their
//! `nn::Path` (`block1.conv`: the prefix of their parameters in the var store).

use super::summary::LayerSpec;
use tch::nn::{self, ModuleT};

/// A sequential model and the name and type of each of its layers.
pub(crate) struct Seq {
    /// The model (PyTorch's `nn.Sequential`).
    pub seq: nn::SequentialT,
    /// One entry per layer of `seq`, in order.
    pub specs: Vec<LayerSpec>,
}

impl Seq {
    /// An empty sequence.
    pub(crate) fn new() -> Self {
        Seq {
            seq: nn::seq_t(),
            specs: Vec::new(),
        }
    }

    /// Appends layer `m` named `name` (from its `nn::Path`: `p.path("conv")`), of type
    /// `kind` (`Conv2d`, `ReLU`, ...).
    pub(crate) fn add<M: ModuleT + 'static>(
        mut self,
        name: String,
        kind: &'static str,
        m: M,
    ) -> Self {
        self.specs.push(LayerSpec::new(name, kind));
        self.seq = self.seq.add(m);
        self
    }
}

impl Default for Seq {
    fn default() -> Self {
        Seq::new()
    }
}
