//! The crib page for the defense: each of the course's nine theory questions answered in two
//! sentences, with the follow-up questions a teacher asks and their short answers. The
//! numbers about this lab's networks are computed (from the configured CNN, its receptive
//! fields, the output-size formula and `tch`'s ResNet-18), not typed in; literature claims
//! name their source.

use super::receptive::{fields, Shape};
use super::shapes::{output_size, ConvSetting};
use crate::models::Net;
use crate::plot::Note;
use crate::Config;
use anyhow::{Context, Result};

/// One question with its answer and follow-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The question as the course asks it.
    pub question: String,
    /// The two-sentence answer.
    pub answer: String,
    /// Follow-up questions with their short answers.
    pub follow_ups: Vec<(String, String)>,
}

/// Numbers about the lab's networks the answers quote, all computed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facts {
    /// `cnn.channels`.
    pub channels: Vec<i64>,
    /// Output side of each block (after its pooling, or its strided conv).
    pub sides: Vec<i64>,
    /// Receptive field of each block's conv output (`blockN.relu`), pixels.
    pub fields: Vec<i64>,
    /// Receptive field of the last layer before global pooling (the last block's pool or
    /// residual block), pixels.
    pub last_field: i64,
    /// Side of block 1's conv output (the input side, halved by a strided stem).
    pub first_side: i64,
    /// Input side.
    pub input: i64,
    /// Parameters of each block's conv and of each block's batch norm.
    pub conv_params: Vec<i64>,
    pub bn_params: Vec<i64>,
    /// `cnn.embedding_dim`.
    pub embedding: i64,
    /// Parameters of the whole CNN.
    pub cnn_params: i64,
    /// Parameters of ResNet-18.
    pub resnet18_params: i64,
}

/// Parameters of the summary row named `name`.
fn row_params(rows: &[crate::models::summary::LayerRow], name: &str) -> Result<i64> {
    let r = rows.iter().find(|r| r.name == name);
    Ok(r.with_context(|| format!("the CNN has no layer {name}"))?
        .params)
}

/// Parameters of a fresh ResNet-18 (`tch::vision::resnet`).
fn resnet18_params() -> i64 {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = tch::vision::resnet::resnet18(&vs.root(), 1000);
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

impl Facts {
    /// The facts of the CNN configured in `cfg`.
    pub(crate) fn of(cfg: &Config) -> Result<Facts> {
        let net = super::shapes::cnn(cfg)?;
        let summary = net.summary()?;
        let blocks = cfg.cnn.channels.len();
        let fs = fields(&Shape::of(&cfg.cnn), cfg.preprocess.image_size);
        let per_block = |part: &str| -> Result<Vec<i64>> {
            (1..=blocks)
                .map(|b| row_params(&summary.rows, &format!("block{b}.{part}")))
                .collect()
        };
        Ok(Facts {
            channels: cfg.cnn.channels.clone(),
            sides: (1..=blocks)
                .filter_map(|b| {
                    let block = format!("block{b}.");
                    fs.iter().rev().find(|f| f.layer.starts_with(&block))
                })
                .map(|f| f.side)
                .collect(),
            fields: fs
                .iter()
                .filter(|f| f.layer.ends_with(".relu"))
                .map(|f| f.size)
                .collect(),
            last_field: fs.last().map_or(0, |f| f.size),
            first_side: fs
                .iter()
                .find(|f| f.layer == "block1.relu")
                .map_or(cfg.preprocess.image_size, |f| f.side),
            input: cfg.preprocess.image_size,
            conv_params: per_block("conv")?,
            bn_params: if cfg.cnn.batch_norm {
                per_block("bn")?
            } else {
                vec![0; blocks]
            },
            embedding: cfg.cnn.embedding_dim,
            cnn_params: summary.total_params(),
            resnet18_params: resnet18_params(),
        })
    }

    /// Weights of a fully connected layer from the input image to block 1's conv maps.
    fn dense_equivalent(&self) -> f64 {
        let (n, m) = (self.input as f64, self.first_side as f64);
        (3.0 * n * n) * (self.channels[0] as f64 * m * m)
    }
}

fn qa(q: &str, a: &str) -> (String, String) {
    (q.to_string(), a.to_string())
}

fn list(v: &[i64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn q1() -> Entry {
    Entry {
        question: "1. What are MNIST and Fashion-MNIST? What is a convolution in the sense of analysis?".into(),
        answer: "MNIST (LeCun et al. 1998) is 70,000 centred 28×28 greyscale handwritten digits (60k train, 10k test, disjoint writers); Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) keeps that format with 10 harder clothing classes: both are small shared benchmarks. The convolution of two functions is (f∗g)(t) = ∫ f(τ) g(t−τ) dτ; the Dirac δ is its identity (f∗δ = f), so a linear shift-invariant system's output is its input convolved with its impulse response h, the response to δ (section 2).".into(),
        follow_ups: vec![
            qa("What is δ(t)?", "Not a function but a distribution (generalised function), defined by the sifting property ∫ f(τ) δ(t−τ) dτ = f(t) for continuous f; the limit of unit-area pulses δ_ε as ε → 0 (section 2 computes f∗δ_ε → f). \"Zero off 0 with unit area\" describes the pulses: a function zero off 0 has integral 0."),
            qa("Is convolution commutative? Cross-correlation?", "Convolution is commutative and associative (substitute τ → t−τ; checked in section 2); cross-correlation is not (it mirrors). Conv layers compute cross-correlation: a learned kernel simply learns the flipped weights."),
            qa("Convolution theorem?", "F{f∗g} = F{f}·F{g} with F{f}(ω) = ∫ f(t) e^{−iωt} dt (the unitary convention adds a factor √(2π)): convolution becomes a product of spectra; section 2 checks it with the FFT on the photo (circular convolution)."),
            qa("How good are models on them?", "MNIST: a linear classifier 88–92 % (LeCun et al. 1998 list 12 % error for a 1-layer linear net; softmax regression ≈ 92 %), CNNs ≈ 99.7 %; Fashion-MNIST: CNNs ≈ 93–95 % (shirt vs T-shirt vs pullover is confusable). All on the 10k test set."),
            qa("Equivariance or invariance?", "Convolution is shift-equivariant (shift the input, the output shifts the same); pooling and global pooling add approximate invariance (Goodfellow et al. 2016, §9.2–9.3)."),
        ],
    }
}

fn q2(f: &Facts) -> Entry {
    Entry {
        question: "2. The convolutional layer: hyper-parameters, their effect, how it is trained, what layers at different depths extract.".into(),
        answer: format!("A conv layer slides c_out learned kernels of c_in/groups × k × k weights over its input and writes each kernel's weighted sum (+ bias) at every position into one feature map; its hyper-parameters (in/out channels, kernel size, stride, padding and padding mode, dilation, groups, bias) fix its parameters c_out·(c_in/groups·k² + bias), output size, receptive field and cost. It is trained by back-propagation: a shared kernel weight's gradient is the sum over all positions and images of input patch × output gradient (section 3 checks it against autograd), and the optimiser (AdamW here) updates it; early layers learn edges and colour blobs, deeper layers larger patterns (a unit of our CNN's last block sees {}×{} of the {} pixels).", f.last_field, f.last_field, f.input),
        follow_ups: vec![
            qa("Why share weights?", &format!("Equivariance and far fewer parameters: block1.conv has {} weights; a fully connected layer from the 3×{n}×{n} image to {c}×{m}×{m} outputs would have {:.1e}.", f.conv_params[0], f.dense_equivalent(), n = f.input, c = f.channels[0], m = f.first_side)),
            qa("Why 3×3 kernels?", "Two stacked 3×3 convs see 5×5 with 18 instead of 25 weights per channel pair and an extra non-linearity (Simonyan & Zisserman 2015, VGG)."),
            qa("How are our CNN's weights initialised?", "He initialisation (He et al. 2015): tch's default conv and linear init is uniform on ±√(6/fan_in), Var(w) = 2/fan_in (section 3 measures it on a fresh CNN); batch norm γ = 1, β = 0. PyTorch's own default, kaiming_uniform_(a=√5), gives 1/(3·fan_in), a sixth of it (section 10a shows what that does to deep plain stacks)."),
            qa("Why bias = false in our convs?", "Batch norm subtracts the mean and adds its own shift β, which makes a conv bias redundant."),
            qa("What is the receptive field?", &format!("The input pixels one unit depends on: {} px for blocks 1…{} here (section 4b, computed and measured by the gradient).", list(&f.fields), f.fields.len())),
            qa("What do the first layers learn?", "Oriented edges, colour blobs (Krizhevsky et al. 2012, Fig. 3; Zeiler & Fergus 2014): section 9 shows our CNN's learned 3×3 kernels; textures, parts and objects deeper are literature findings (Zeiler & Fergus 2014), not measured here."),
            qa("Dilation and groups?", "Dilation d spaces the taps (receptive field d(k−1)+1 without more weights); groups g splits the channels into g independent convolutions (g = c_in: depthwise, as in EfficientNet-Lite0)."),
        ],
    }
}

fn q3(f: &Facts) -> Entry {
    let lenet = output_size(ConvSetting {
        input: 32,
        kernel: 5,
        padding: 0,
        stride: 1,
        dilation: 1,
    })
    .unwrap_or(0);
    Entry {
        question: "3. How is the output size computed? What are padding and stride?".into(),
        answer: "n_out = ⌊(n + 2p − d(k−1) − 1)/s⌋ + 1 for input n, kernel k, padding p, stride s, dilation d (PyTorch Conv2d; section 4 checks it against conv2d). Padding adds p rows and columns (zeros by default; reflect, replicate or circular) around the input so border pixels can be kernel centres and the size can be kept; the stride is the step between kernel positions: it downsamples by about s and divides the compute by about s².".into(),
        follow_ups: vec![
            qa("LeNet-5's first layers?", &format!("The 28×28 MNIST digits padded to 32×32, 5×5 kernels without padding: {lenet}×{lenet} (C1), then 2×2 subsampling: {}×{} (S2) (LeCun et al. 1998, §II.B).", lenet / 2, lenet / 2)),
            qa("And when n + 2p − k is not divisible by s?", &format!("The floor drops the last rows and columns: our block5 pools {0}×{0} to {1}×{1}.", f.sides[f.sides.len() - 2], f.sides[f.sides.len() - 1])),
            qa("\"Same\" padding?", "p = (k−1)/2 with stride 1 keeps the size, for odd k; with stride 2 it gives ⌈n/2⌉."),
            qa("Strided conv vs conv + pooling?", "A strided conv learns its downsampling and costs less; conv + max pool keeps the strongest response (Springenberg et al. 2015 replace pooling by strided convs)."),
        ],
    }
}

fn q4(f: &Facts) -> Entry {
    Entry {
        question: "4. What is a feature map, how is it computed, is it a layer, what does it hold at different depths, how many per layer?".into(),
        answer: format!("A feature map is one output channel of a conv layer: for every position, the weighted sum of the input window over all input channels plus bias (then batch norm and ReLU); it is the layer's output, not a layer, and a layer makes one map per kernel (out_channels). Our CNN's blocks make {} maps of {}×{} … pixels (sides after pooling {}); early maps are sharp and respond to local edges and colours, late maps are coarse and each unit sees most of the photo (section 9 shows both for the trained CNN).", list(&f.channels), f.first_side, f.first_side, list(&f.sides)),
        follow_ups: vec![
            qa("What does the next layer see?", "All feature maps of the previous layer as its input channels."),
            qa("Feature map, activation, channel?", "The same array seen three ways: a channel of the layer's output tensor, its values are the activations."),
            qa("Who chooses the number of maps?", "We do: out_channels is a hyper-parameter (cnn.channels in config.json)."),
        ],
    }
}

fn q5(f: &Facts) -> Entry {
    let c = &f.channels;
    let sep = 9 * c[3] + c[3] * c[4];
    Entry {
        question: "5. How does a kernel work on one channel and on several channels or feature maps?".into(),
        answer: format!("With groups = 1 a kernel spans all input channels: on an RGB image a 3×3 kernel has 3×3×3 = 27 weights, its slices filter R, G and B and the three responses are summed into one map (section 5 checks the sum); from the second layer on the channels are the previous feature maps (block2's kernels have {}·9 = {} weights). With groups = g each kernel sees c_in/g channels only; a depthwise conv (g = c_in, used by EfficientNet-Lite0) filters every channel alone and a following 1×1 conv mixes them.", c[0], c[0] * 9),
        follow_ups: vec![
            qa("Weights of block4?", &format!("One kernel {}·9 = {}; the layer {} (no bias).", c[2], c[2] * 9, f.conv_params[3])),
            qa("What is a 1×1 conv for?", "Mixing and resizing channels at each pixel (Lin et al. 2014, NiN; ResNet's bottleneck)."),
            qa("What does a depthwise-separable conv save?", &format!("3×3 from {} to {} channels: {} weights as one conv, {} as depthwise 3×3 + pointwise 1×1.", c[3], c[4], 9 * c[3] * c[4], sep)),
            qa("Greyscale photo into an RGB network?", "Repeat the grey channel three times (or sum the first layer's kernels over their channels)."),
        ],
    }
}

fn q6() -> Entry {
    Entry {
        question: "6. What is 2-D pooling?".into(),
        answer: "Pooling replaces each k×k window (stride s) of every feature map, channel by channel, by its maximum or mean: it has no parameters, only hyper-parameters (kernel_size, stride = kernel_size by default, padding, dilation, ceil_mode; for average pooling count_include_pad, divisor_override), halves the resolution with 2×2/2, enlarges later layers' receptive fields and gives some tolerance to small shifts. The gradient passes through it: max pooling sends each window's gradient to its arg-max, average pooling spreads it as 1/k² over the window.".into(),
        follow_ups: vec![
            qa("Does it change the number of channels?", "No, it works per channel."),
            qa("Max vs average?", "Max keeps whether a feature is present anywhere in the window; average keeps its mean strength (smoother)."),
            qa("Why global average pooling before the classifier?", "One number per channel: far fewer weights than flattening, any input size (Lin et al. 2014)."),
            qa("Is the network then shift-invariant?", "Only approximately: strided pooling aliases, and small shifts can change the output (Azulay & Weiss 2019; Zhang 2019)."),
            qa("Overlapping pooling?", "Window larger than stride, e.g. 3×3/2 in AlexNet and ResNet's stem."),
        ],
    }
}

fn q7(f: &Facts) -> Entry {
    let bn4 = f.bn_params[3];
    Entry {
        question: "7. What is batch normalisation (BatchNorm2d)?".into(),
        answer: "For each channel it subtracts the mean and divides by √(variance + ε), both taken over the batch and all positions (N, H, W), then applies a learned scale γ and shift β (Ioffe & Szegedy 2015); section 7 checks the axes. In training mode it uses the batch's statistics and updates running averages (running ← 0.9·running + 0.1·batch, unbiased variance); in evaluation mode it uses those averages, so a prediction does not depend on the other photos; it allows higher learning rates and faster, steadier training.".into(),
        follow_ups: vec![
            qa("Its hyper-parameters?", "num_features, eps (1e-5; EfficientNet-Lite0 uses 1e-3), momentum (0.1, the weight of the new batch; None = cumulative average), affine (learn γ, β), track_running_stats."),
            qa("Why learn γ and β?", "So normalisation does not limit what the layer can represent: γ = σ, β = μ gives back the identity."),
            qa("Parameters of block4.bn?", &format!("{bn4} learned (γ and β per channel) plus as many buffers (running mean and variance), not trained.")),
            qa("Small batches?", "Noisy statistics and a larger train/eval gap; batch size 1 with one value per channel fails in training mode. Batch renorm (Ioffe 2017) reduces the gap (still batch statistics, corrected by r and d); group norm (Wu & He 2018) and layer norm do not depend on the batch."),
            qa("Forgot model.eval()?", "Predictions depend on the batch and the running statistics keep changing (section 7)."),
            qa("Why does it help?", "Ioffe & Szegedy said \"internal covariate shift\"; Santurkar et al. 2018 show it rather smooths the loss landscape."),
            qa("Frozen backbone?", "Keep its batch norm in evaluation mode (fixed ImageNet statistics): lab5's EfficientNet does, and section 11 checks that its features do not depend on the batch, against the same batch norm in training mode, whose output does and whose statistics move."),
        ],
    }
}

fn q8(f: &Facts) -> Entry {
    let last = f.channels[f.channels.len() - 1];
    let side = f.sides[f.sides.len() - 1];
    Entry {
        question: "8. How does a CNN turn an image into an embedding, and what can be done with it?".into(),
        answer: format!("The conv blocks turn the 3×{n}×{n} photo into {last} maps of {side}×{side}, global average pooling makes that a {last}-vector, and a linear layer with ReLU makes the {e}-d embedding (the penultimate layer; non-negative), which the last linear layer maps to the two class scores. An embedding is used for a linear classifier, k-NN classification and similarity search (cosine distance), clustering, near-duplicate and outlier detection, label auditing (02_labels), 2-D maps (04_embeddings) and as features for another model (05_transfer).", n = f.input, e = f.embedding),
        follow_ups: vec![
            qa("Why GAP, not flatten?", &format!("Flattening {last}·{side}·{side} into {e} would take {} weights, GAP {} (and fits any input size).", last * side * side * f.embedding, last * f.embedding, e = f.embedding)),
            qa("Are similar photos close?", "Cross-entropy only makes the classes separable; closeness of similar photos emerges, it is not optimised (metric learning does that: contrastive or triplet losses, Schroff et al. 2015)."),
            qa("Embedding a new photo?", "Same preprocessing, evaluation mode (running batch-norm statistics, no dropout)."),
            qa("Embedding vs logits?", "Logits are the 2 class scores after the last linear layer; the embedding is the representation before it."),
        ],
    }
}

fn q9(f: &Facts) -> Entry {
    Entry {
        question: "9. What is ResNet? Why does the gradient flow better? How is it used for transfer learning?".into(),
        answer: format!("ResNet (He et al. 2016) adds an identity shortcut around every two (basic block) or three (bottleneck) conv layers, y = ReLU(x + F(x)), so the layers learn a residual F and the identity is just F = 0; ResNet-18 is a 7×7/2 stem with a 3×3/2 max pool, four stages of two basic blocks (64, 128, 256, 512 channels; 56, 28, 14, 7 px at 224), 1×1 projection shortcuts where the shape changes, GAP and fc-1000: {} parameters (section 10c). The Jacobian of a block is D(I + ∂F/∂x) (D: the ReLU's 0/1 gate), so the gradient has a path around every block (section 10 computes its two parts); in the pre-activation ResNet (He et al. 2016b) x_L = x_l + Σ F(x_i), so ∂L/∂x_l = ∂L/∂x_L (I + ∂/∂x_l Σ F(x_i)) and ∂L/∂x_L reaches every block unchanged; for transfer learning one replaces fc by a new head (Linear(512, 2)), freezes the rest with batch norm in eval mode, trains the head, then optionally fine-tunes the last stage with a smaller learning rate.", f.resnet18_params),
        follow_ups: vec![
            qa("What is the degradation problem? Overfitting?", "Deeper plain nets reach a higher training error than shallower ones, so it is not overfitting: 34 vs 18 layers on ImageNet (He et al. 2016, Fig. 4), 56 vs 20 on CIFAR-10 (Fig. 1). §4.1 says it is unlikely to be vanishing gradients (their plain nets had BN and healthy gradient norms) but an optimisation difficulty. Section 10b tries it on our photos at a tiny scale, over 5 seeds (read its table: mean ± sd, and in how many seeds the deep stack ends higher)."),
            qa("Did you show vanishing gradients?", "At initialisation with PyTorch's default init the plain stack's first-layer gradient collapses by orders of magnitude with depth; with He init it shrinks only by a small factor, and with skips it does not shrink (section 10a). That is an effect of the initialisation, not the degradation problem, and none of the lab's networks uses PyTorch's default: our CNN is He-initialised and has batch norm."),
            qa("Write down why the gradient flows.", "Original block x_{l+1} = ReLU(x_l + F(x_l)): ∂L/∂x_l = ∂L/∂x_{l+1} · D_l (I + ∂F/∂x_l), an identity path D_l g gated by the ReLU mask plus a branch path. Pre-activation x_{l+1} = x_l + F(x_l): summing, x_L = x_l + Σ_{i=l}^{L−1} F(x_i), so ∂L/∂x_l = ∂L/∂x_L (I + ∂/∂x_l Σ F(x_i)): a term that is not multiplied by any weight (He et al. 2016b, eq. 4–5); section 10 computes both paths on one block."),
            qa("Shapes of x and F(x) differ?", "A projection shortcut: 1×1 conv with stride 2 + BN (or zero-padding, option A of the paper)."),
            qa("Basic vs bottleneck block?", "Bottleneck 1×1 (reduce) → 3×3 → 1×1 (expand ×4) is cheaper at wide stages: ResNet-50 has 25.6 M parameters with 50 layers."),
            qa("How was it trained?", "SGD, momentum 0.9, batch 256, lr 0.1 divided by 10 on plateaus, weight decay 1e-4, BN after every conv, no dropout, scale and colour augmentation (He et al. 2016, §3.4)."),
            qa("Which layers to unfreeze first, and why a smaller lr?", "The last ones: they are the most task-specific (Yosinski et al. 2014); a small lr keeps the pretrained features."),
            qa("Why EfficientNet-Lite0 here?", "Its ImageNet weights are available offline (ResNet-18's cannot be downloaded on the lab machines), and it is small (4.7 M parameters with its ImageNet classifier, TF TPU repository) and fast on a CPU. Its MBConv blocks are MobileNetV2's inverted residuals with linear bottlenecks (Sandler et al. 2018), used by EfficientNet (Tan & Le 2019); the Lite variants (TensorFlow TPU repository, 2020) drop squeeze-excitation, replace swish by ReLU6 and keep stem and head fixed, for quantisation and mobile accelerators."),
            qa("Is the label check \"zero-shot\"?", "Not in the usual sense (unseen classes via side information; Lampert et al. 2009): cats and dogs are ImageNet classes (5 domestic-cat classes, 118 dog breeds)."),
        ],
    }
}

/// The nine entries for the configured CNN.
pub fn entries(cfg: &Config) -> Result<Vec<Entry>> {
    let f = Facts::of(cfg)?;
    Ok(vec![
        q1(),
        q2(&f),
        q3(&f),
        q4(&f),
        q5(&f),
        q6(),
        q7(&f),
        q8(&f),
        q9(&f),
    ])
}

/// The crib page as Markdown: per question, the answer, then its follow-ups as a list.
pub fn page(cfg: &Config) -> Result<Note> {
    let mut md = String::new();
    for e in entries(cfg)? {
        md.push_str(&format!("**{}**\n\n{}\n\n", e.question, e.answer));
        for (q, a) in &e.follow_ups {
            md.push_str(&format!("- *{q}* {a}\n"));
        }
        md.push('\n');
    }
    Ok(Note(md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_answers_with_follow_ups_and_computed_numbers() {
        let cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        let e = entries(&cfg).unwrap();
        assert_eq!(e.len(), 9);
        assert!(e.iter().all(|e| e.follow_ups.len() >= 3), "{e:?}");
        let f = Facts::of(&cfg).unwrap();
        assert_eq!(f.fields, vec![3, 8, 18, 38, 78]);
        assert_eq!(f.conv_params[0], 3 * 9 * 32);
        assert_eq!(f.conv_params[3], 128 * 9 * 256);
        assert_eq!(f.bn_params[3], 2 * 256);
        assert_eq!(f.resnet18_params, 11_689_512);
        let md = page(&cfg).unwrap().0;
        // the last block's pool: 78 + (2 - 1) x the jump of 16 before it
        assert_eq!((f.last_field, f.first_side), (94, 112));
        assert!(md.contains("94×94") && md.contains("11689512"), "{md}");
        assert!(md.contains("to 32×112×112 outputs"), "{md}");
        assert!(
            md.contains("28×28 (C1), then 2×2 subsampling: 14×14 (S2)"),
            "{md}"
        );
    }

    #[test]
    fn a_strided_stem_and_residual_blocks_change_the_computed_numbers() {
        let mut cfg =
            crate::Config::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.json")).unwrap();
        cfg.cnn.stem_stride = 2;
        cfg.cnn.residual_after = vec![2, 5];
        let f = Facts::of(&cfg).unwrap();
        assert_eq!(f.first_side, 56);
        assert_eq!(f.sides, vec![56, 28, 14, 7, 3]);
        // block 5's pool (+1 x jump 16), then its residual block's two 3x3 convs at jump 32
        assert_eq!(f.last_field, f.fields[4] + 16 + 2 * 2 * 32);
        let md = page(&cfg).unwrap().0;
        assert!(md.contains("to 32×56×56 outputs"), "{md}");
    }
}
