//! Dependency-free text intent classifier with calibrated confidence and
//! out-of-scope (OOS) detection.
//!
//! Pipeline: light normalisation -> hashed word uni/bi-grams + character
//! 3-4-grams of the whole text (word-internal and spanning two words) ->
//! sublinear TF-IDF, L2 normalised -> a softmax model trained by SGD ->
//! temperature scaling + OOS threshold, both fitted on out-of-fold scores
//! from a stratified k-fold cross-validation. The softmax model is low-rank
//! (fastText-style: the features' 48-dimensional embeddings are summed and a
//! softmax layer reads the sum; label smoothing 0.1; eight such models from
//! different random starts, logits averaged) from
//! `low_rank_min_examples` examples on, and a full-rank linear softmax on
//! smaller sets, where the embeddings cannot be learnt.
//!
//! Measured on CLINC150 (train -> val; "top-1" ignores the threshold, mean
//! of 3 seeds; the candidates were also compared on two 20% hold-outs of
//! train, where they ranked the same): the linear model gave 92.5% in-scope
//! / 56% oos recall (top-1 92.5%); label smoothing lifts its top-1 to 93.0%;
//! the low-rank model reaches 93.6% top-1 and, with the CV threshold, 93.6%
//! in-scope / 68% oos recall (92.7-93.3% / 61-77% over 4 other seeds) in
//! about the same training time with ~30 MB less memory. Tried and not
//! kept, top-1 change on val: stem (suffix-stripped) uni/bi-grams +0.1,
//! skip-bigrams -0.2, separate word and char models averaged in logit space
//! +0.3 (linear) / -1.4 (low-rank), feature dropout 0.2 +0.25 (but -0.2 on
//! a train hold-out), cosine kNN blended into the logits -0.1 to -1.6,
//! Crammer-Singer hinge -1.0, squared hinge +0.3, two seeds averaged +0.2 at
//! 1.5x the time, linear + low-rank averaged +0.0, the CV fold models used
//! as a bagged ensemble instead of a final model +0.0 (and 3-4x slower
//! prediction), 96/128 dimensions +0.0/+0.3 at 1.5x/2x the time.
//!
//! Second round (mean of 14 seeds on val unless said; "hold-out" = 6 seeds
//! of a 19% hold-out of train, where the oos figures mean little: ~19 oos
//! examples). The low-rank SGD had a bug: it skipped gradient entries with
//! `|p - s/C| <= GRAD_EPS`, which drops the label-smoothing push `-s/C` for
//! most classes; the applied gradient no longer summed to zero, the mean
//! output row and the hidden vectors fed each other, and from ~7 epochs (or
//! step 0.3) the weights blew up (top-1 88%). With a zero-sum update (see
//! `train_low_rank`) SGD is stable at any epoch count or step tried, but a
//! single model still plateaus at ~93.5% top-1 (3-10 epochs, step 0.2-0.4,
//! 32-128 dimensions: 93.1-93.6%). What helped is averaging several models,
//! paid for by 3 passes at step 0.3 instead of 6 at 0.2 (same top-1 per
//! model) and an AVX2 build of the SGD loop (~25% faster). Before -> after:
//! top-1 93.43 -> 93.96%, in-scope 92.86% (92.17-93.33 over seeds) / oos
//! recall 69.6% (61-77) -> 93.59% (93.33-93.77) / 68.9% (62-78); hold-out
//! top-1 95.82 -> 95.89%, in-scope 95.23 -> 95.56%; `lazyops intents bench`
//! on one quiet core, runs alternated: training 0.89-0.95 s (was
//! 0.96-1.06 s), 13 µs per sentence (was 7.5), peak RSS 49 MB (unchanged);
//! default seed on val 93.5% / 64% (was 93.2% / 72%). 8-seed val means for the
//! alternatives (top-1 / in-scope at `min_oos_recall` 0.7): one 64-dim
//! model 93.44 / 93.10; 2 x 64 93.75 / 93.43 (0.9x the time); 3 x 64
//! 93.85 / 93.56; 2 x 48 93.77 / 93.44; 3 x 48 94.01 / 93.64 (kept); 4 x 48
//! 94.00 / 93.66 and 5 x 48 94.01 / 93.70 (1.1x / 1.3x); 3 x 56 93.74 /
//! 93.47; 4 x 32 93.78 / 93.48; 6 x 32 93.85 / 93.53; 2 x 128 93.87 /
//! 93.60 (1.4x); 3 x 48 with 4 passes 93.86 / 93.55, with 6 at step 0.2
//! 93.93 / 93.58 (1.5x), 3 passes at step 0.2 93.62 / 93.10. Also tried,
//! not kept (6-8 seeds): the two CV fold models added to one final model's
//! logits (weights 1/6 each, final 2/3), free at training time: +0.16 top-1
//! / +0.33 in-scope on val but -0.06 top-1 on the hold-out; 3 CV folds
//! instead of 2 +0.07 in-scope at 1.25x the time; max-norm on output rows
//! and a smaller step for the embeddings (both meant to fix the blow-up
//! before its cause was found) no better; tanh or ReLU on the hidden vector
//! +0.0 / -0.3; a random 10-30% of the features left out of each averaged
//! model (random subspaces) -0.3 to -0.6; Polyak averaging of the last
//! epochs' weights -0.1 to +0.1; features (char
//! 3-5 or 2-4 or 2-5 grams, min_df 1, char weight 0.7 / 1.4) -0.3 to +0.1,
//! all noise-level; OOS scores other than the top in-scope probability
//! (top-2 margin, ratio, entropy, p(in) - p(oos)): no better at any recall
//! on val; software prefetch of the next example's embedding rows: no
//! faster in CPU time. The remaining threshold cost is small: even a
//! threshold picked on val itself gives ~93.8% in-scope at 50-55% recall,
//! so 94% in-scope needs a better top-1, not a better rule.
//!
//! Third round. Candidates were chosen on a 19% stratified hold-out of
//! train (10 seeds, ~2850 in-scope examples) and confirmed on val (14
//! seeds); "top-1" below is the argmax over all classes, oos included, on
//! in-scope examples ("top-1 in" excludes the oos class, the earlier rounds'
//! figure). Kept: character n-grams over the whole text instead of per word
//! (`char_across_words`), which also lets the ensemble keep gaining past 3
//! members; 8 members instead of 3; step 0.4 instead of 0.3; character
//! weight 0.8; a vectorisable `exp` in the SGD softmax (~8% faster training,
//! same results). Before -> after, val 14 seeds: in-scope 93.55%
//! (93.07-93.83) -> 94.11% (93.93-94.30), oos recall 64.0% (54-75) -> 64.4%
//! (56-72), top-1 93.68 -> 94.28%, top-1 in 93.86 -> 94.41%; hold-out
//! in-scope 95.67 -> 96.13%, top-1 95.80 -> 96.25%; `lazyops intents bench`
//! (default seed, one core): 93.5% / 64% -> 94.1% / 72%, training
//! 0.56-0.61 -> 1.08-1.15 s, 7.5 -> 24-27 µs per sentence, peak RSS 45 ->
//! 81 MB (the 8 x 29k x 48 embeddings); demo eval 255 -> 256 of 261. The 8-model ensemble at 2 passes and step 0.6 is
//! as good (val 94.08% / 71.2% recall, hold-out 96.10%) at ~0.75x the
//! training time, if the budget gets tight. Tried and not kept (val unless said; Δ against
//! the configuration of the time): word trigrams top-1 -0.02 (+0.08 on the
//! hold-out), -0.08 with cross-word n-grams; a supervised term weight, IDF x
//! ((1 - a) + a (1 - H(class | feature) / ln C)), a = 0.3 / 0.6: top-1 -0.16
//! / -0.49 (hold-out -0.09 / -0.29); 2^22 / 2^24 hash buckets -0.08 / -0.11
//! (collisions are not a problem); suffix-stripped word stems added -0.05;
//! dropout on the hidden vector 0.1 / 0.25: -0.09 / -0.25; a cosine output
//! layer (hidden vector L2-normalised, scale 8 / 16) -0.9 / -2.7 top-1 and
//! far worse calibration; cross-word char 3-5-grams -0.14, 2-4-grams +0.0,
//! char weight 1.25 -0.10; different feature views per member (three single
//! models: word-internal 3-4, cross-word 3-4, cross-word 2-5, log-probability
//! averaged) top-1 in +0.09 over three same-view members, and nothing over
//! three cross-word members; on the kept ensemble (hold-out in-scope 96.13):
//! 10 members 96.10, label smoothing 0.05 96.07, 6 members of 64 dims
//! 96.05, char 2-4-grams 96.11, 3 CV folds of 3 passes 96.07, step 0.5
//! 96.00. OOS side: the in-scope cost of rejecting is ~0.3 points (0.17 from
//! in-scope examples whose top label is oos, 0.11 from the threshold), and
//! an oracle threshold picked on val at 55-60% recall recovers only 0.1 of
//! it; subtracting a bias from the oos log-probability before the argmax
//! (0.5-3 nats) gains nothing at equal recall, even with the oracle.
//!
//! Fourth round: pretrained meaning. The sentence's static embedding
//! (`super::embedding`: all-MiniLM-L6-v2 distilled to 256 int8 dimensions per
//! WordPiece token, mean-pooled, unit length) is appended to the unit-length
//! TF-IDF vector as 256 dense features of weight `dense_weight`; on small sets
//! (the linear model) each class's nearest training example by cosine also
//! adds `neighbour_weight` x cosine to its logit. CLINC150 val, default seed,
//! `lazyops intents bench` (release; timings on a machine at load 8-20, so
//! only relative): weight 0 (no embedding) 94.13% in-scope / 72% oos recall,
//! 8.9 s training, 97 µs per sentence; weight 1 94.40% / 69%, 8.3 s, 120 µs;
//! weight 1 with the first 128 dimensions 94.07% / 63%; weight 2 91.9% / 19%
//! and weight 4 0% (the low-rank SGD at step 0.4 diverges on dense inputs that
//! large). So on CLINC150 the table gives +0.3 points, far from the +1.4 of a
//! numpy replica (95.7 top-1); scaling per dimension or a smaller step for the
//! dense rows were not tried. On the demo's realistic held-out sentences it
//! gives more: 393 -> 407 of 452 with the features alone (weight 1.0; 0.5
//! and 1.5 were worse on the dev set), 411 with the nearest-example term
//! (built, off by default: see `neighbour_weight`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Name of the label treated as the out-of-scope class.
const OOS_LABEL: &str = "oos";
/// Gradient entries at or below this magnitude are not applied.
const GRAD_EPS: f32 = 1e-3;
/// Threshold used when there is too little data to cross-validate.
const DEFAULT_THRESHOLD: f32 = 0.5;

/// Hyper-parameters. The defaults were picked by measurement on CLINC150
/// (train split only, threshold by cross-validation) and also behave on
/// small hand-written training sets.
#[derive(Clone, Debug)]
pub struct Options {
    /// SGD passes over the data for the final linear model.
    pub epochs: usize,
    /// SGD passes over the data for each final low-rank model. Measured on
    /// CLINC150 val (3 x 48 dims, step 0.3; top-1 / in-scope, 8 seeds):
    /// 3 -> 94.01 / 93.64, 4 -> 93.86 / 93.55; a single 64-dim model gave
    /// 93.4-93.6% top-1 whatever the passes (3-10) once SGD was fixed.
    pub low_rank_epochs: usize,
    /// SGD passes for each cross-validation model (linear or low-rank).
    pub cv_epochs: usize,
    /// Number of cross-validation folds used to fit calibration + threshold.
    /// Folds and CV passes are most of the training time: measured on
    /// CLINC150 on one core (in-scope / oos recall / training), 3 folds of 6
    /// passes 93.6 / 68 / 2.5 s, 3 of 4 93.4 / 68 / 2.1 s, 2 of 6
    /// 92.7 / 67 / 1.65 s, 2 of 4 93.2 / 72 / 1.3 s: the last is the one that
    /// keeps training inside its 2 s budget (figures for the earlier single
    /// 64-dim model; with two 64-dim models, 3 folds of 4 passes gave +0.07
    /// in-scope at 1.25x the time).
    pub cv_folds: usize,
    /// Initial SGD step size of the linear model; decays linearly.
    pub learning_rate: f32,
    /// Embedding size of the low-rank model; 0 always uses the full-rank
    /// linear softmax instead. Measured top-1 on CLINC150 val, one model, 3
    /// passes at step 0.3 (8 seeds): 32 -> 93.1%, 48 -> 93.3%, 64 -> 93.4%,
    /// 96 -> 93.6% (1.2x the time of 64); linear -> 92.5% (93.0% with label
    /// smoothing 0.1). Averaged models gain more per unit of time than wider
    /// ones: see `ensemble`.
    pub hidden_dim: usize,
    /// The low-rank model is used from this many training examples on; below
    /// it the linear model. The embeddings need data: on the 91-sentence
    /// unit-test set the low-rank model was right on 65% of out-of-fold
    /// examples with tiny logits, which the temperature then blew up.
    pub low_rank_min_examples: usize,
    /// Number of low-rank models trained on all the data (different random
    /// starts and orders) whose logits are averaged; the cross-validation
    /// models stay single (the averaged logits are a little less confident
    /// than the single models' the temperature was fitted on, which only
    /// errs towards more oos recall). Measured on CLINC150 val, 48 dims,
    /// step 0.3, word-internal character n-grams (top-1 / in-scope / oos
    /// recall, 8 seeds): 1 -> 93.34 / 93.03 / 64.5, 2 -> 93.77 / 93.44 /
    /// 67.5, 3 -> 94.01 / 93.64 / 67.2, 4 -> 94.00 / 93.66 / 67.1. With
    /// `char_across_words` the gain goes on further (in-scope, 14 seeds, step
    /// 0.3): 3 -> 93.79 (12 seeds), 5 -> 93.90, 6 -> 93.94, 8 -> 93.96; at
    /// step 0.4 and `char_weight` 0.8: 6 -> 94.09, 8 -> 94.11 (10 -> 96.10
    /// vs 96.13 on a train hold-out). Each model adds ~0.11 s of training
    /// (one core) and ~3 µs per prediction.
    pub ensemble: usize,
    /// Initial SGD step size of the low-rank model; decays linearly to zero.
    /// Before the zero-sum fix in `train_low_rank` its weights grew until SGD
    /// was unstable at 0.3, or 0.2 with 8 epochs (top-1 ~88%); now 0.3 with 3
    /// passes matches 0.2 with 6 (0.2 with 3 passes: -0.4 top-1) and 0.3 with
    /// 8 passes or 0.4 with 3 are within 0.3 points for a single model. For
    /// an 8-model ensemble a larger step pays (more diverse members?): on a
    /// train hold-out (in-scope, 10 seeds) 0.3 -> 95.89, 0.4 -> 96.07, 0.5 ->
    /// 96.00; on val (14 seeds) 0.3 -> 93.96, 0.4 -> 94.03.
    pub low_rank_learning_rate: f32,
    /// Label smoothing for the low-rank model: the target puts
    /// `1 - label_smoothing` on the true label, the rest spread over all
    /// labels, so SGD stops pushing an example once it is confidently right.
    /// Measured top-1 on CLINC150 val: 0 -> 93.2%, 0.05 -> 93.7%,
    /// 0.1 -> 93.6%, 0.2 -> 93.5%.
    pub label_smoothing: f32,
    /// Features are hashed into `2^hash_bits` buckets.
    pub hash_bits: u32,
    /// Smallest character n-gram length (0 disables character n-grams).
    pub char_min: usize,
    /// Character n-grams over the whole normalised text (" what is my ")
    /// rather than over each word alone (" what ", " is ", " my "): the same
    /// word-internal n-grams plus the ones spanning two words ("t is",
    /// "s my"), ~25% more trained features. Measured on CLINC150 (3 models,
    /// step 0.3, top-1 / in-scope, 12 seeds of val): 93.66 / 93.53 -> 93.90 /
    /// 93.79; on a train hold-out +0.04 / +0.05 alone, but the ensembles
    /// gain more from it (see `ensemble`).
    pub char_across_words: bool,
    /// Largest character n-gram length.
    pub char_max: usize,
    /// Whether word bigrams are used.
    pub word_bigrams: bool,
    /// Weight of character n-grams relative to word n-grams. With
    /// `char_across_words` and 8 models at step 0.4: 1.0 -> 94.03 / 96.07,
    /// 0.8 -> 94.11 / 96.13 (in-scope, val 14 seeds / train hold-out 10
    /// seeds).
    pub char_weight: f32,
    /// A feature must occur in at least this many training texts to get weights.
    pub min_df: u32,
    /// Weight of oos recall against in-scope accuracy when the threshold is
    /// chosen by cross-validation (objective = accuracy + weight * recall).
    /// Only used when `min_oos_recall` is 0.
    pub oos_weight: f32,
    /// Threshold rule when an "oos" class exists: the lowest threshold whose
    /// out-of-fold oos recall reaches this floor, i.e. the highest in-scope
    /// accuracy subject to `oos recall >= min_oos_recall` (both curves are
    /// monotone in the threshold). 0 switches to the weighted objective.
    /// Default 0.7: 0.5 target plus ~2 standard errors of the difference
    /// between two 100-example recall estimates (out-of-fold vs deployment),
    /// plus margin because out-of-fold recall can be optimistic. With a
    /// single low-rank model it was: at 0.7 two of four seeds gave 41-47% on
    /// CLINC150 val, hence 0.75 then. The averaged models (`ensemble`) are
    /// scored less confidently than the single CV models the threshold comes
    /// from, which moved val recall up; measured over 14 seeds (in-scope /
    /// oos recall on val): 0.75 -> 92.80-93.73% / 70-82%, 0.7 -> 93.33-93.77%
    /// / 62-78%, 0.65 -> 93.47-93.90% / 50-70% (too close to 50). On a
    /// hold-out of train with 40% of its oos examples held out (6 seeds,
    /// ~40 oos each), 0.7 gave 68-85% recall.
    pub min_oos_recall: f32,
    /// In-scope recall kept by the threshold when there is no "oos" class.
    pub target_recall: f32,
    /// Only the first `max_chars` characters of a text are looked at.
    pub max_chars: usize,
    /// Linear model only (`hidden_dim` 0): when > 0, the model is the mean of
    /// the weights at the end of epochs `average_from..epochs` (the step then
    /// only decays to half of `learning_rate`). 0 keeps the last iterate with
    /// a step decaying to zero. Measured: +0.15 points top-1 (4 seeds) on
    /// CLINC150 for the linear model.
    pub average_from: usize,
    /// Seed for shuffling and fold assignment (training is deterministic).
    pub seed: u64,
    /// Weight of the sentence's static embedding (`super::embedding`, unit length) appended
    /// to the (unit-length) TF-IDF vector as dense features; 0, or no table in the build,
    /// leaves the dependency-free features alone.
    pub dense_weight: f32,
    /// How many of the embedding's dimensions are used (its first ones: the table's columns are
    /// PCA components, largest variance first, so this is PCA to fewer dimensions).
    pub dense_dims: usize,
    /// Small training sets (the linear model) only: weight of each class's nearest example
    /// by embedding cosine, added to its logit (also in cross-validation, against the other
    /// folds' examples, so temperature and threshold see it). 0 turns it off. Off by default:
    /// on the demo's realistic held-out set 2.0 gave 411 vs 407 of 452 (dev 147 vs 146 of
    /// 157), but it added ~1.5 s to training in debug builds (the cross-validation compares
    /// every example with half the others), and tests with time budgets failed.
    pub neighbour_weight: f32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            epochs: 6,
            low_rank_epochs: 3,
            cv_epochs: 4,
            cv_folds: 2,
            learning_rate: 4.0,
            hidden_dim: 48,
            low_rank_min_examples: 3000,
            ensemble: 8,
            low_rank_learning_rate: 0.4,
            label_smoothing: 0.1,
            hash_bits: 20,
            char_min: 3,
            char_max: 4,
            char_across_words: true,
            word_bigrams: true,
            char_weight: 0.8,
            min_df: 2,
            oos_weight: 1.0,
            min_oos_recall: 0.7,
            target_recall: 0.97,
            max_chars: 1000,
            average_from: 2,
            seed: 0x5eed_1a2b_3c4d_5e6f,
            dense_weight: 1.0,
            dense_dims: 256,
            neighbour_weight: 0.0,
        }
    }
}

/// One scored label. `score` is a calibrated probability in `0..=1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub label: usize,
    pub score: f32,
}

/// Feature-extraction settings that must be identical at train and predict time.
#[derive(Clone, Debug)]
struct FeatureConfig {
    bits: u32,
    char_min: usize,
    char_max: usize,
    word_bigrams: bool,
    char_across_words: bool,
    char_weight: f32,
    max_chars: usize,
}

/// A trained classifier. Immutable after training, hence `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Classifier {
    labels: Vec<String>,
    oos: Option<usize>,
    features: FeatureConfig,
    /// bucket -> row in `weights`, for the buckets that have one.
    index: Index,
    /// IDF per row.
    idf: Vec<f32>,
    /// IDF given to features never seen in training: they carry no weight but
    /// still count in the L2 norm, so mostly-unknown texts get small logits
    /// (low confidence) instead of having their few known features blown up.
    unknown_idf: f32,
    model: Model,
    temperature: f32,
    threshold: f32,
    /// The static embedding as features, when used.
    dense: Option<Dense>,
    /// Embedded training examples for the nearest-example term, when used.
    neighbours: Option<Neighbours>,
}

/// The training examples' embeddings with their labels: for each class, the cosine of its
/// nearest example is a logit term. Kept for small sets only (`Model::Linear`), where a few
/// hundred examples cost ~0.2 MB and ~50 µs a sentence.
#[derive(Clone, Debug)]
struct Neighbours {
    /// Row-major `examples x dims`, unit rows.
    vectors: Vec<f32>,
    labels: Vec<usize>,
    dims: usize,
    weight: f32,
}

impl Neighbours {
    /// Adds `weight x max cosine` per class over the examples `pool` (all when `None`).
    fn add(&self, e: &[f32], pool: Option<&[usize]>, z: &mut [f32]) {
        let mut best = vec![f32::NEG_INFINITY; z.len()];
        let mut visit = |i: usize| {
            if let (Some(v), Some(&y)) = (self.vectors.get(i * self.dims..(i + 1) * self.dims), self.labels.get(i))
                && let Some(b) = best.get_mut(y)
            {
                let c = dot(v, e);
                if c > *b {
                    *b = c;
                }
            }
        };
        match pool {
            Some(p) => p.iter().for_each(|&i| visit(i)),
            None => (0..self.labels.len()).for_each(visit),
        }
        for (zc, b) in z.iter_mut().zip(best) {
            if b.is_finite() {
                *zc += self.weight * b;
            }
        }
    }
}

/// The static sentence embedding as dense features: rows `base..base + dims` of the model.
#[derive(Clone, Copy, Debug)]
struct Dense {
    table: &'static super::embedding::Table,
    base: u32,
    weight: f32,
    dims: usize,
}

impl Dense {
    /// Appends an embedding to a vectorised text.
    fn append(&self, e: &[f32], x: &mut Vec<(u32, f32)>) {
        x.extend(e.iter().take(self.dims).enumerate().map(|(k, v)| (self.base + k as u32, v * self.weight)));
    }
}

// ---------------------------------------------------------------------------
// Text normalisation and features
// ---------------------------------------------------------------------------

/// Lowercases, folds common English contractions and strips punctuation, so
/// "What's my balance?" and "what is my balance" produce the same tokens.
fn tokenize(text: &str, max_chars: usize) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len().min(max_chars * 4));
    for c in text.chars().take(max_chars) {
        if c == '\u{2019}' || c == '\u{2018}' || c == '`' {
            cleaned.push('\'');
        } else if c.is_alphanumeric() || c == '\'' {
            cleaned.extend(c.to_lowercase());
        } else {
            cleaned.push(' ');
        }
    }
    let mut out = Vec::new();
    for raw in cleaned.split_whitespace() {
        let word = raw.trim_matches('\'');
        if word.is_empty() {
            continue;
        }
        if !word.contains('\'') {
            out.push(fold_digits(word));
            continue;
        }
        expand_contraction(word, &mut out);
    }
    out
}

/// Maps every digit to '0': amounts and times vary freely between examples,
/// their shape ("00:00", "000") is what carries intent.
fn fold_digits(word: &str) -> String {
    word.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect()
}

fn expand_contraction(word: &str, out: &mut Vec<String>) {
    match word {
        "can't" | "cannot" => {
            out.push("can".into());
            out.push("not".into());
            return;
        }
        "won't" => {
            out.push("will".into());
            out.push("not".into());
            return;
        }
        "let's" => {
            out.push("let".into());
            out.push("us".into());
            return;
        }
        _ => {}
    }
    // Split at the last apostrophe: "what's" -> ("what", "s").
    let Some(pos) = word.rfind('\'') else {
        out.push(fold_digits(word));
        return;
    };
    let (head, tail) = (&word[..pos], &word[pos + 1..]);
    let head = head.replace('\'', "");
    match tail {
        "t" if head.ends_with('n') => {
            let stem = &head[..head.len() - 1];
            if !stem.is_empty() {
                out.push(fold_digits(stem));
            }
            out.push("not".into());
        }
        "s" => {
            out.push(fold_digits(&head));
            const IS_WORDS: [&str; 12] =
                ["what", "where", "who", "how", "it", "that", "there", "he", "she", "here", "when", "why"];
            if IS_WORDS.contains(&head.as_str()) {
                out.push("is".into());
            }
        }
        "m" => {
            out.push(fold_digits(&head));
            out.push("am".into());
        }
        "re" => {
            out.push(fold_digits(&head));
            out.push("are".into());
        }
        "ll" => {
            out.push(fold_digits(&head));
            out.push("will".into());
        }
        "ve" => {
            out.push(fold_digits(&head));
            out.push("have".into());
        }
        "d" => {
            out.push(fold_digits(&head));
            out.push("would".into());
        }
        _ => out.push(fold_digits(&format!("{head}{tail}"))),
    }
}

/// Small, fast 64-bit hash (FxHash-style multiply-rotate with a strong final
/// mix) so feature extraction costs little per n-gram.
#[inline]
fn hash_bytes(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for part in parts {
        for &b in *part {
            h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        h = (h.rotate_left(5) ^ 0xff).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    splitmix_mix(h)
}

#[inline]
fn splitmix_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Raw hashed features of a text: `(bucket, weight * (1 + ln tf))` pairs
/// sorted by bucket. Word and character n-grams are counted separately so
/// the character block can be down-weighted: it is ~5x larger and would
/// otherwise drown the (more precise) word evidence after L2 normalisation.
fn raw_features(text: &str, cfg: &FeatureConfig) -> Vec<(u32, f32)> {
    let tokens = tokenize(text, cfg.max_chars);
    let shift = 64 - cfg.bits;
    let bucket = |h: u64| (h >> shift) as u32;
    let mut words: Vec<u32> = Vec::with_capacity(tokens.len() * 2 + 1);
    let mut chars: Vec<u32> = Vec::with_capacity(tokens.len() * 12);
    let mut padded: Vec<u8> = Vec::with_capacity(64);
    for (i, tok) in tokens.iter().enumerate() {
        words.push(bucket(hash_bytes(1, &[tok.as_bytes()])));
        if cfg.word_bigrams {
            let prev: &[u8] = if i == 0 { b"<s>" } else { tokens[i - 1].as_bytes() };
            words.push(bucket(hash_bytes(2, &[prev, tok.as_bytes()])));
        }
        if cfg.char_min > 0 && !cfg.char_across_words {
            padded.clear();
            padded.push(b' ');
            padded.extend_from_slice(tok.as_bytes());
            padded.push(b' ');
            char_grams(&padded, cfg, &mut chars);
        }
    }
    if cfg.char_min > 0 && cfg.char_across_words && !tokens.is_empty() {
        // " what is my balance ": the word-internal n-grams (with the same
        // space boundary markers as above) plus those spanning word pairs.
        padded.clear();
        padded.push(b' ');
        for tok in &tokens {
            padded.extend_from_slice(tok.as_bytes());
            padded.push(b' ');
        }
        char_grams(&padded, cfg, &mut chars);
    }
    if cfg.word_bigrams
        && let Some(last) = tokens.last()
    {
        words.push(bucket(hash_bytes(2, &[last.as_bytes(), b"</s>"])));
    }
    words.sort_unstable();
    chars.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(words.len() + chars.len());
    merge_counts(&words, 1.0, &mut out);
    merge_counts(&chars, cfg.char_weight, &mut out);
    out.sort_unstable_by_key(|e| e.0);
    out
}

/// Buckets of the `char_min..=char_max`-byte windows of `text`.
fn char_grams(text: &[u8], cfg: &FeatureConfig, out: &mut Vec<u32>) {
    let shift = 64 - cfg.bits;
    for n in cfg.char_min..=cfg.char_max {
        if text.len() < n {
            break;
        }
        out.extend(text.windows(n).map(|gram| (hash_bytes(3, &[gram]) >> shift) as u32));
    }
}

fn merge_counts(buckets: &[u32], w: f32, out: &mut Vec<(u32, f32)>) {
    let mut i = 0;
    while i < buckets.len() {
        let b = buckets[i];
        let mut j = i;
        while j < buckets.len() && buckets[j] == b {
            j += 1;
        }
        out.push((b, w * (1.0 + ((j - i) as f32).ln())));
        i = j;
    }
}

/// Bucket -> trained row. A map rather than a `2^bits` array: the array took 4 MB, dirty in
/// every page, whether the model knew two hundred thousand features (CLINC150) or a few
/// thousand (the demo, in every `lazyops serve`).
type Index = HashMap<u32, u32, BuildHasherDefault<BucketHasher>>;

/// Buckets are hashes already; one multiply spreads them over the map's control bits.
#[derive(Clone, Copy, Debug, Default)]
struct BucketHasher(u64);

impl Hasher for BucketHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Sparse TF-IDF vector over trained rows, L2-normalised including unknown
/// features.
fn vectorize(raw: &[(u32, f32)], index: &Index, idf: &[f32], unknown_idf: f32) -> Vec<(u32, f32)> {
    let mut out = Vec::with_capacity(raw.len());
    let mut norm = 0.0f32;
    for &(b, tf) in raw {
        match index.get(&b) {
            None => {
                let v = tf * unknown_idf;
                norm += v * v;
            }
            Some(&row) => {
                let v = tf * idf.get(row as usize).copied().unwrap_or(unknown_idf);
                norm += v * v;
                out.push((row, v));
            }
        }
    }
    if norm > 0.0 {
        let inv = 1.0 / norm.sqrt();
        for e in &mut out {
            e.1 *= inv;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Linear model
// ---------------------------------------------------------------------------

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix_mix(self.0)
    }
    /// Uniform in `0..n` (n > 0); modulo bias is irrelevant for shuffling.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Vectorised training data shared by the CV folds and the final model.
struct Data {
    xs: Vec<Vec<(u32, f32)>>,
    ys: Vec<usize>,
    rows: usize,
    classes: usize,
}

/// Dense linear scorer: row-major `rows x classes` weights plus a bias.
#[derive(Clone, Debug)]
struct Linear {
    weights: Vec<f32>,
    bias: Vec<f32>,
    classes: usize,
}

impl Linear {
    fn logits_into(&self, x: &[(u32, f32)], out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        let c = self.classes;
        for &(r, v) in x {
            let start = r as usize * c;
            if let Some(w) = self.weights.get(start..start + c) {
                for (o, wi) in out.iter_mut().zip(w) {
                    *o += v * wi;
                }
            }
        }
    }
}

/// Low-rank softmax model (fastText-style): a text's hidden vector is the
/// TF-IDF-weighted sum of its features' `dim`-dimensional embeddings, and
/// the logits are `out · hidden + bias`. Sharing one small embedding per
/// feature across all labels generalises better to unseen phrasings than a
/// free weight per (feature, label) pair: +1.1 points top-1 on CLINC150 val.
#[derive(Clone, Debug)]
struct LowRank {
    /// Row-major `rows x dim` feature embeddings.
    embeddings: Vec<f32>,
    /// Row-major `classes x dim` output weights.
    out: Vec<f32>,
    bias: Vec<f32>,
    dim: usize,
}

impl LowRank {
    #[inline(always)]
    fn hidden_into(&self, x: &[(u32, f32)], h: &mut [f32]) {
        h.iter_mut().for_each(|v| *v = 0.0);
        let d = self.dim;
        for &(r, v) in x {
            let start = r as usize * d;
            if let Some(e) = self.embeddings.get(start..start + d) {
                for (hi, ei) in h.iter_mut().zip(e) {
                    *hi += v * ei;
                }
            }
        }
    }

    #[inline(always)]
    fn output_into(&self, h: &[f32], z: &mut [f32]) {
        for ((zc, w), b) in z.iter_mut().zip(self.out.chunks_exact(self.dim)).zip(&self.bias) {
            *zc = b + dot(w, h);
        }
    }

    fn logits_into(&self, x: &[(u32, f32)], z: &mut [f32]) {
        let mut h = vec![0.0f32; self.dim];
        self.hidden_into(x, &mut h);
        self.output_into(&h, z);
    }
}

/// Dot product with eight independent accumulators, so the compiler can
/// vectorise it (a plain `sum()` is a serial chain of float additions).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The trained scorer: low-rank (default; the mean of the members' logits)
/// or full-rank linear.
#[derive(Clone, Debug)]
enum Model {
    Linear(Linear),
    LowRank(Vec<LowRank>),
}

impl Model {
    fn logits_into(&self, x: &[(u32, f32)], out: &mut [f32]) {
        match self {
            Model::Linear(m) => m.logits_into(x, out),
            Model::LowRank(members) => {
                let Some((first, rest)) = members.split_first() else {
                    out.iter_mut().for_each(|v| *v = 0.0);
                    return;
                };
                first.logits_into(x, out);
                if rest.is_empty() {
                    return;
                }
                let mut z = vec![0.0f32; out.len()];
                for m in rest {
                    m.logits_into(x, &mut z);
                    out.iter_mut().zip(&z).for_each(|(o, v)| *o += v);
                }
                let inv = 1.0 / members.len() as f32;
                out.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
}

/// Low-rank model when `hidden_dim > 0` and there are at least
/// `low_rank_min_examples` examples in all (decided on the full set so the
/// CV models and the final one are of the same kind), else linear. A final
/// low-rank model is `ensemble` independently trained ones, a CV one single.
fn train_model(data: &Data, subset: &[usize], cv: bool, opts: &Options, rng: &mut SplitMix) -> Model {
    if opts.hidden_dim == 0 || data.xs.len() < opts.low_rank_min_examples {
        let epochs = if cv { opts.cv_epochs } else { opts.epochs }.max(1);
        let m = train_linear(data, subset, epochs, opts.learning_rate, 0.0, opts.average_from, rng);
        Model::Linear(m)
    } else {
        let (epochs, members) = if cv { (opts.cv_epochs, 1) } else { (opts.low_rank_epochs, opts.ensemble) };
        let smoothing = opts.label_smoothing.clamp(0.0, 0.5);
        let lr = opts.low_rank_learning_rate;
        let members = (0..members.max(1))
            .map(|_| {
                let run = LowRankRun { data, subset, epochs: epochs.max(1), lr0: lr, smoothing, dim: opts.hidden_dim };
                train_low_rank(run, rng)
            })
            .collect();
        Model::LowRank(members)
    }
}

/// Softmax gradient `p - target` with label smoothing, in place in `p`.
fn smoothed_gradient(p: &mut [f32], y: usize, smoothing: f32) {
    if smoothing > 0.0 {
        let off = smoothing / p.len() as f32;
        p.iter_mut().for_each(|v| *v -= off);
    }
    if let Some(t) = p.get_mut(y) {
        *t -= 1.0 - smoothing;
    }
}

/// SGD for [`LowRank`] with a step decaying linearly to zero. Embeddings
/// start small and random (the output layer at zero), so the first updates
/// shape the output layer and the embeddings follow.
///
/// On x86-64 CPUs with AVX2 the same code is compiled a second time with
/// 8-wide vectors (the default target only assumes SSE2, 4-wide): ~25%
/// faster training on CLINC150 (the same as `-C target-cpu=native`), with
/// bit-identical results (Rust never fuses or reorders float operations,
/// so the arithmetic is the same).
fn train_low_rank(run: LowRankRun<'_>, rng: &mut SplitMix) -> LowRank {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { train_low_rank_avx2(run, rng) };
    }
    train_low_rank_impl(run, rng)
}

/// What one low-rank training run is given.
#[derive(Clone, Copy)]
struct LowRankRun<'a> {
    data: &'a Data,
    subset: &'a [usize],
    epochs: usize,
    lr0: f32,
    smoothing: f32,
    dim: usize,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn train_low_rank_avx2(run: LowRankRun<'_>, rng: &mut SplitMix) -> LowRank {
    train_low_rank_impl(run, rng)
}

#[inline(always)]
fn train_low_rank_impl(run: LowRankRun<'_>, rng: &mut SplitMix) -> LowRank {
    let LowRankRun { data, subset, epochs, lr0, smoothing, dim } = run;
    let (xs, ys, classes) = (&data.xs, &data.ys, data.classes);
    let d = dim.max(1);
    let scale = 2.0 / (d as f32).sqrt();
    let embeddings: Vec<f32> =
        (0..data.rows * d).map(|_| ((rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale).collect();
    let mut m = LowRank { embeddings, out: vec![0.0; classes * d], bias: vec![0.0; classes], dim: d };
    let mut order: Vec<usize> = subset.to_vec();
    let total = (epochs * order.len()).max(1) as f32;
    let mut step = 0usize;
    let (mut h, mut dh) = (vec![0.0f32; d], vec![0.0f32; d]);
    // Mean of the output rows, for the zero-sum correction below.
    let mut mean_out = vec![0.0f32; d];
    let inv_classes = 1.0 / classes.max(1) as f32;
    let mut p = vec![0.0f32; classes];
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let lr = lr0 * (1.0 - step as f32 / total);
            step += 1;
            let (Some(x), Some(&y)) = (xs.get(i), ys.get(i)) else {
                continue;
            };
            m.hidden_into(x, &mut h);
            m.output_into(&h, &mut p);
            softmax_fast(&mut p);
            // Output layer. The smoothed gradient is `p - (1 - s) one-hot - s/C`;
            // its uniform `-s/C` part adds the same vector to every output row,
            // which no softmax can see, so it is left out, and classes with a
            // negligible rest (`p <= GRAD_EPS`, most of them once training is
            // under way) are skipped. The gradient reaching the embeddings must
            // still be that of a zero-sum update (the exact gradient sums to
            // zero over classes), hence the rows are centred on their mean
            // there. Without this (skipping `|p - s/C| <= GRAD_EPS`, which drops
            // the uniform part for most classes but not all) the mean row and
            // the hidden vectors fed each other: past ~6 epochs at step 0.2 the
            // weights grew ~15x and top-1 on CLINC150 fell to 88%.
            dh.iter_mut().for_each(|v| *v = 0.0);
            let mut g_sum = 0.0f32;
            for (c, ((&pc, w), b)) in p.iter().zip(m.out.chunks_exact_mut(d)).zip(&mut m.bias).enumerate() {
                let g = if c == y { pc - (1.0 - smoothing) } else { pc };
                if g.abs() <= GRAD_EPS {
                    continue;
                }
                g_sum += g;
                for ((dk, wk), hk) in dh.iter_mut().zip(w.iter_mut()).zip(&h) {
                    *dk += g * *wk;
                    *wk -= lr * g * hk;
                }
                *b -= lr * g;
            }
            let mean_step = lr * g_sum * inv_classes;
            for ((dk, mk), hk) in dh.iter_mut().zip(&mut mean_out).zip(&h) {
                *dk -= g_sum * *mk;
                *mk -= mean_step * hk;
            }
            for &(r, v) in x {
                let start = r as usize * d;
                if let Some(e) = m.embeddings.get_mut(start..start + d) {
                    let s = lr * v;
                    for (ek, dk) in e.iter_mut().zip(&dh) {
                        *ek -= s * dk;
                    }
                }
            }
        }
    }
    m
}

/// `e^x` for `x <= 0`, to a relative error of ~1e-7 x (1 + |x|) (the
/// rounding of `x * log2 e`), written so that a loop over it vectorises (the
/// libm `exp` is a scalar call per element).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let t = x.max(-87.0) * std::f32::consts::LOG2_E;
    // Round to nearest by adding and subtracting 1.5 * 2^23 (`round` does
    // not vectorise without SSE4.1); then e^x = 2^n * e^(g), |g| <= ln2 / 2,
    // with e^g from its degree-6 Taylor polynomial.
    let n = (t + 12_582_912.0) - 12_582_912.0;
    let g = (t - n) * std::f32::consts::LN_2;
    let poly = 1.0 + g * (1.0 + g * (0.5 + g * (1.0 / 6.0 + g * (1.0 / 24.0 + g * (1.0 / 120.0 + g * (1.0 / 720.0))))));
    poly * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// [`softmax_in_place`] with [`exp_nonpositive`], for the low-rank SGD loop:
/// ~8% less training time on CLINC150, same accuracy to 0.01 points.
#[inline(always)]
fn softmax_fast(z: &mut [f32]) {
    softmax_with(z, exp_nonpositive);
}

#[inline(always)]
fn softmax_in_place(z: &mut [f32]) {
    softmax_with(z, f32::exp);
}

/// Softmax with `exp` called on values `<= 0` only (the max is subtracted first).
#[inline(always)]
fn softmax_with(z: &mut [f32], exp: impl Fn(f32) -> f32) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        let u = 1.0 / z.len().max(1) as f32;
        z.iter_mut().for_each(|v| *v = u);
        return;
    }
    z.iter_mut().for_each(|v| *v = exp(*v - max));
    let inv = 1.0 / z.iter().sum::<f32>();
    z.iter_mut().for_each(|v| *v *= inv);
}

/// Multinomial logistic regression by SGD with a linearly decaying step.
/// With `average_from > 0` the result is the mean of the end-of-epoch
/// weights from that epoch on (Polyak averaging; the step decays to half);
/// otherwise the last iterate with the step decaying to zero.
fn train_linear(
    data: &Data,
    subset: &[usize],
    epochs: usize,
    lr0: f32,
    smoothing: f32,
    average_from: usize,
    rng: &mut SplitMix,
) -> Linear {
    let (xs, ys, classes) = (&data.xs, &data.ys, data.classes);
    let rows = data.rows;
    let mut model = Linear { weights: vec![0.0; rows * classes], bias: vec![0.0; classes], classes };
    let mut order: Vec<usize> = subset.to_vec();
    let total = (epochs * order.len()).max(1) as f32;
    let mut step = 0usize;
    let mut p = vec![0.0f32; classes];
    let mut grad: Vec<(usize, f32)> = Vec::with_capacity(classes);
    // Polyak averaging of end-of-epoch snapshots (allocated lazily).
    let averaging = average_from > 0 && average_from < epochs;
    let decay = if averaging { 0.5 } else { 1.0 };
    let mut avg_w: Vec<f32> = Vec::new();
    let mut avg_b: Vec<f32> = Vec::new();
    let mut n_avg = 0.0f32;
    for epoch in 0..epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let lr = lr0 * (1.0 - decay * step as f32 / total);
            step += 1;
            let (Some(x), Some(&y)) = (xs.get(i), ys.get(i)) else {
                continue;
            };
            model.logits_into(x, &mut p);
            softmax_in_place(&mut p);
            smoothed_gradient(&mut p, y, smoothing);
            // Sparse gradient: once the model is past the first epoch nearly
            // all classes have p ~ 0 and updating them is wasted memory
            // traffic; skipping |g| <= GRAD_EPS halves training time at no
            // measurable accuracy cost.
            grad.clear();
            grad.extend(p.iter().enumerate().filter(|(_, g)| g.abs() > GRAD_EPS).map(|(c, &g)| (c, g)));
            for &(c, g) in &grad {
                model.bias[c] -= lr * g;
            }
            for &(r, v) in x {
                let start = r as usize * classes;
                if let Some(w) = model.weights.get_mut(start..start + classes) {
                    let s = lr * v;
                    for &(c, g) in &grad {
                        w[c] -= s * g;
                    }
                }
            }
        }
        if averaging && epoch >= average_from {
            if avg_w.is_empty() {
                avg_w = vec![0.0; model.weights.len()];
                avg_b = vec![0.0; classes];
            }
            for (a, w) in avg_w.iter_mut().zip(&model.weights) {
                *a += w;
            }
            for (a, w) in avg_b.iter_mut().zip(&model.bias) {
                *a += w;
            }
            n_avg += 1.0;
        }
    }
    if n_avg > 0.0 {
        let inv = 1.0 / n_avg;
        for (w, a) in model.weights.iter_mut().zip(&avg_w) {
            *w = a * inv;
        }
        for (w, a) in model.bias.iter_mut().zip(&avg_b) {
            *w = a * inv;
        }
    }
    model
}

// ---------------------------------------------------------------------------
// Calibration and threshold
// ---------------------------------------------------------------------------

/// Out-of-fold logits reduced to what temperature fitting needs: per example
/// the true-class logit and the largest `TOP` logits (shifted by the max).
/// Classes further down contribute < e^-20 after scaling at any sensible
/// temperature, so dropping them keeps the fit exact enough and ~6x cheaper.
struct CalibSet {
    true_logit: Vec<f32>,
    top: Vec<f32>,
    width: usize,
}

const TOP: usize = 24;

impl CalibSet {
    fn new(logits: &[f32], ys: &[usize], classes: usize) -> CalibSet {
        let width = classes.min(TOP);
        let mut true_logit = Vec::with_capacity(ys.len());
        let mut top = Vec::with_capacity(ys.len() * width);
        let mut buf: Vec<f32> = Vec::with_capacity(classes);
        for (z, &y) in logits.chunks_exact(classes).zip(ys) {
            buf.clear();
            buf.extend_from_slice(z);
            buf.sort_unstable_by(|a, b| b.total_cmp(a));
            let max = buf.first().copied().unwrap_or(0.0);
            top.extend(buf.iter().take(width).map(|v| v - max));
            true_logit.push(z.get(y).copied().unwrap_or(max) - max);
        }
        CalibSet { true_logit, top, width }
    }

    /// Mean negative log-likelihood of the true labels at temperature `t`.
    fn nll(&self, t: f32) -> f64 {
        let inv = 1.0 / t;
        let mut total = 0.0f64;
        for (zs, &zy) in self.top.chunks_exact(self.width).zip(&self.true_logit) {
            let sum: f32 = zs.iter().map(|v| (v * inv).exp()).sum();
            total += f64::from(sum.ln() - zy * inv);
        }
        total / self.true_logit.len().max(1) as f64
    }
}

/// Temperature minimising out-of-fold NLL (golden-section search on log T).
/// Fitting on held-out scores is what makes the probabilities honest: the
/// SGD model is over-confident on its own training data.
fn fit_temperature(logits: &[f32], ys: &[usize], classes: usize) -> f32 {
    if ys.is_empty() || classes < 2 {
        return 1.0;
    }
    let set = CalibSet::new(logits, ys, classes);
    let (mut a, mut b) = ((0.02f32).ln(), (50.0f32).ln());
    let g = 0.618_034f32;
    let mut m1 = b - g * (b - a);
    let mut m2 = a + g * (b - a);
    let (mut f1, mut f2) = (set.nll(m1.exp()), set.nll(m2.exp()));
    for _ in 0..30 {
        if f1 < f2 {
            b = m2;
            m2 = m1;
            f2 = f1;
            m1 = b - g * (b - a);
            f1 = set.nll(m1.exp());
        } else {
            a = m1;
            m1 = m2;
            f1 = f2;
            m2 = a + g * (b - a);
            f2 = set.nll(m2.exp());
        }
    }
    ((a + b) / 2.0).exp()
}

/// Per held-out example: (top in-scope probability, answer correct if accepted,
/// top overall label is oos, true label is oos).
struct Oof {
    score: f32,
    correct: bool,
    top_is_oos: bool,
    is_oos: bool,
}

fn choose_threshold(oof: &[Oof], has_oos: bool, opts: &Options) -> f32 {
    let target_recall = opts.target_recall;
    let n_in = oof.iter().filter(|o| !o.is_oos).count();
    let n_oos = oof.len() - n_in;
    if n_in == 0 {
        return DEFAULT_THRESHOLD;
    }
    let mut scores: Vec<&Oof> = oof.iter().collect();
    scores.sort_by(|a, b| a.score.total_cmp(&b.score));
    if !has_oos || n_oos == 0 {
        // Keep `target_recall` of held-out in-scope examples above the threshold.
        let miss = ((1.0 - target_recall.clamp(0.0, 1.0)) * n_in as f32).floor() as usize;
        let ins: Vec<f32> = scores.iter().filter(|o| !o.is_oos).map(|o| o.score).collect();
        return ins.get(miss).copied().unwrap_or(0.0);
    }
    // Sweep the cut upward over the sorted scores: cut position `i` rejects
    // the `i` lowest-scoring examples. Objective = in-scope acc + oos recall.
    let mut accepted_correct = oof.iter().filter(|o| !o.is_oos && o.correct && !o.top_is_oos).count();
    let mut oos_rejected = oof.iter().filter(|o| o.is_oos && o.top_is_oos).count();
    let floor = opts.min_oos_recall.clamp(0.0, 1.0);
    if floor > 0.0 {
        // Raise the cut until enough held-out oos examples are rejected.
        let need = (f64::from(floor) * n_oos as f64).ceil() as usize;
        let mut pos = 0;
        while oos_rejected < need && pos < scores.len() {
            let s = scores[pos].score;
            while pos < scores.len() && scores[pos].score == s {
                let o = scores[pos];
                if o.is_oos && !o.top_is_oos {
                    oos_rejected += 1;
                }
                pos += 1;
            }
        }
        if pos == 0 {
            return scores.first().map_or(0.0, |o| o.score * 0.5);
        }
        let below = scores[pos - 1].score;
        let above = scores.get(pos).map_or(1.0, |o| o.score);
        return 0.5 * (below + above);
    }
    let w = f64::from(opts.oos_weight.max(0.0));
    let objective = |ac: usize, orj: usize| ac as f64 / n_in as f64 + w * orj as f64 / n_oos as f64;
    let mut cuts: Vec<(usize, f64)> = vec![(0, objective(accepted_correct, oos_rejected))];
    let mut i = 0;
    while i < scores.len() {
        let s = scores[i].score;
        while i < scores.len() && scores[i].score == s {
            let o = scores[i];
            if !o.top_is_oos {
                if o.is_oos {
                    oos_rejected += 1;
                } else if o.correct {
                    accepted_correct -= 1;
                }
            }
            i += 1;
        }
        cuts.push((i, objective(accepted_correct, oos_rejected)));
    }
    let best = cuts.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
    // Middle of the first plateau of optimal cuts: the optimum is flat and
    // noisy, the middle is the most robust choice.
    let first = cuts.iter().position(|c| c.1 >= best - 1e-12).unwrap_or(0);
    let run = cuts[first..].iter().take_while(|c| c.1 >= best - 1e-12).count();
    let pos = cuts[first + (run.max(1) - 1) / 2].0;
    if pos == 0 {
        return scores.first().map_or(0.0, |o| o.score * 0.5);
    }
    let below = scores[pos - 1].score;
    let above = scores.get(pos).map_or(1.0, |o| o.score);
    0.5 * (below + above)
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

impl Classifier {
    /// Trains on `(text, label index)` pairs. A label named "oos" is trained
    /// as a real class (it teaches the model what negatives look like) but is
    /// never returned by [`Classifier::decide`]. Examples with an out-of-range
    /// label are ignored.
    pub fn train(examples: &[(&str, usize)], labels: &[String], opts: &Options) -> Classifier {
        let classes = labels.len();
        let features = FeatureConfig {
            bits: opts.hash_bits.clamp(8, 24),
            char_min: opts.char_min,
            char_max: opts.char_max.max(opts.char_min),
            word_bigrams: opts.word_bigrams,
            char_across_words: opts.char_across_words,
            char_weight: opts.char_weight.max(0.0),
            max_chars: opts.max_chars.max(1),
        };
        let oos = labels.iter().position(|l| l == OOS_LABEL);
        let examples: Vec<(&str, usize)> = examples.iter().copied().filter(|&(_, y)| y < classes).collect();
        let ys: Vec<usize> = examples.iter().map(|e| e.1).collect();
        let raws: Vec<Vec<(u32, f32)>> = examples.iter().map(|(t, _)| raw_features(t, &features)).collect();

        // Document frequencies per bucket, then dense rows for frequent buckets.
        let n_buckets = 1usize << features.bits;
        let mut df = vec![0u32; n_buckets];
        for raw in &raws {
            for &(b, _) in raw {
                df[b as usize] += 1;
            }
        }
        let n_docs = raws.len() as f32;
        let mut index = Index::default();
        let mut idf = Vec::new();
        for (b, &d) in df.iter().enumerate() {
            if d >= opts.min_df.max(1) {
                index.insert(b as u32, idf.len() as u32);
                idf.push(((n_docs + 1.0) / (d as f32 + 1.0)).ln() + 1.0);
            }
        }
        drop(df);
        let unknown_idf = (n_docs + 1.0).ln() + 1.0;
        let mut xs: Vec<Vec<(u32, f32)>> = raws.iter().map(|r| vectorize(r, &index, &idf, unknown_idf)).collect();
        drop(raws);
        let dense = super::embedding::table().filter(|_| opts.dense_weight > 0.0).map(|table| Dense {
            table,
            base: idf.len() as u32,
            weight: opts.dense_weight,
            dims: opts.dense_dims.clamp(1, table.dims()),
        });
        let mut rows = idf.len();
        let mut neighbours = None;
        if let Some(d) = &dense {
            let dims = d.table.dims();
            let embedded: Vec<Option<Vec<f32>>> = examples.iter().map(|(t, _)| d.table.embed(t)).collect();
            for (x, e) in xs.iter_mut().zip(&embedded) {
                if let Some(e) = e {
                    d.append(e, x);
                }
            }
            rows += d.dims;
            let linear = opts.hidden_dim == 0 || xs.len() < opts.low_rank_min_examples;
            if linear && opts.neighbour_weight > 0.0 {
                let mut vectors = Vec::with_capacity(embedded.len() * dims);
                for e in &embedded {
                    match e {
                        Some(e) => vectors.extend_from_slice(e),
                        None => vectors.extend(std::iter::repeat_n(0.0, dims)),
                    }
                }
                neighbours = Some(Neighbours { vectors, labels: ys.clone(), dims, weight: opts.neighbour_weight });
            }
        }
        let data = Data { xs, ys, rows, classes };

        let mut rng = SplitMix(opts.seed);
        let (temperature, threshold) = if classes >= 2 {
            Self::cross_validate(&data, oos, neighbours.as_ref(), opts, &mut rng)
        } else {
            (1.0, DEFAULT_THRESHOLD)
        };
        let all: Vec<usize> = (0..data.xs.len()).collect();
        let model = train_model(&data, &all, false, opts, &mut rng);
        Classifier {
            labels: labels.to_vec(),
            oos,
            features,
            index,
            idf,
            unknown_idf,
            model,
            temperature,
            threshold,
            dense,
            neighbours,
        }
    }

    /// Stratified k-fold: returns (temperature, threshold) fitted on
    /// out-of-fold logits, so both reflect how the model behaves on text it
    /// has not seen rather than on its (over-confident) training data.
    fn cross_validate(
        data: &Data,
        oos: Option<usize>,
        neighbours: Option<&Neighbours>,
        opts: &Options,
        rng: &mut SplitMix,
    ) -> (f32, f32) {
        let (xs, ys, classes) = (&data.xs, &data.ys, data.classes);
        let k = opts.cv_folds.min(10).min(xs.len());
        if k < 2 {
            return (1.0, DEFAULT_THRESHOLD);
        }
        // Stratified assignment: shuffle each class, deal round-robin with a
        // running offset so small classes do not all land in fold 0.
        let mut fold = vec![0usize; xs.len()];
        let mut next = 0usize;
        for c in 0..classes {
            let mut members: Vec<usize> = (0..xs.len()).filter(|&i| ys[i] == c).collect();
            rng.shuffle(&mut members);
            for i in members {
                fold[i] = next % k;
                next += 1;
            }
        }
        let mut logits = vec![0.0f32; xs.len() * classes];
        for f in 0..k {
            let train: Vec<usize> = (0..xs.len()).filter(|&i| fold[i] != f).collect();
            let model = train_model(data, &train, true, opts, rng);
            for i in (0..xs.len()).filter(|&i| fold[i] == f) {
                let z = &mut logits[i * classes..(i + 1) * classes];
                model.logits_into(&xs[i], z);
                if let Some(nb) = neighbours
                    && let Some(e) = nb.vectors.get(i * nb.dims..(i + 1) * nb.dims)
                {
                    nb.add(e, Some(&train), z);
                }
            }
        }
        let temperature = fit_temperature(&logits, ys, classes);
        let mut oof = Vec::with_capacity(xs.len());
        let mut p = vec![0.0f32; classes];
        for (i, &y) in ys.iter().enumerate() {
            for (pi, z) in p.iter_mut().zip(&logits[i * classes..(i + 1) * classes]) {
                *pi = z / temperature;
            }
            softmax_in_place(&mut p);
            let (top, _) = argmax(&p, None);
            let (best_in, score) = argmax(&p, oos);
            oof.push(Oof { score, correct: best_in == y, top_is_oos: Some(top) == oos, is_oos: Some(y) == oos });
        }
        let threshold = choose_threshold(&oof, oos.is_some(), opts);
        (temperature, threshold)
    }

    /// Calibrated probabilities for every class (including oos).
    fn probabilities(&self, text: &str) -> (Vec<f32>, bool) {
        let classes = self.labels.len();
        let raw = raw_features(text, &self.features);
        let mut x = vectorize(&raw, &self.index, &self.idf, self.unknown_idf);
        // Known means a feature shared with the training data; the embedding alone does not make
        // gibberish in scope.
        let known = !x.is_empty();
        let embedded = self.dense.as_ref().and_then(|d| d.table.embed(text));
        if let (Some(d), Some(e)) = (&self.dense, &embedded) {
            d.append(e, &mut x);
        }
        let mut z = vec![0.0f32; classes];
        self.model.logits_into(&x, &mut z);
        if let (Some(nb), Some(e)) = (&self.neighbours, &embedded) {
            nb.add(e, None, &mut z);
        }
        let inv_t = 1.0 / self.temperature;
        z.iter_mut().for_each(|v| *v *= inv_t);
        softmax_in_place(&mut z);
        (z, known)
    }

    /// Top-`k` labels, best first; scores are temperature-calibrated softmax
    /// probabilities over all classes (oos included).
    pub fn predict(&self, text: &str, k: usize) -> Vec<Scored> {
        if self.labels.is_empty() || k == 0 {
            return Vec::new();
        }
        let (p, _) = self.probabilities(text);
        let mut scored: Vec<Scored> = p.iter().enumerate().map(|(label, &score)| Scored { label, score }).collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
        scored.truncate(k);
        scored
    }

    /// Label names; a label's index is its position.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Probability below which the top in-scope answer is treated as out of
    /// scope. Chosen by cross-validation on the training data: when an "oos"
    /// class exists, the lowest threshold whose out-of-fold oos recall reaches
    /// `Options::min_oos_recall` (or, with that set to 0, the one maximising
    /// in-scope accuracy + `oos_weight` x oos recall), otherwise
    /// keeps ~`target_recall` of held-out in-scope examples.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The in-scope answer, or `None` when the text looks out of scope: the
    /// top label is oos, the best in-scope probability is below the
    /// threshold, or the text shares no feature with the training data.
    pub fn decide(&self, text: &str) -> Option<Scored> {
        if self.labels.is_empty() {
            return None;
        }
        let (p, known) = self.probabilities(text);
        if !known {
            return None;
        }
        let (top, _) = argmax(&p, None);
        if Some(top) == self.oos {
            return None;
        }
        let (label, score) = argmax(&p, self.oos);
        (score >= self.threshold).then_some(Scored { label, score })
    }
}

/// Index and value of the largest entry, skipping `skip`.
fn argmax(p: &[f32], skip: Option<usize>) -> (usize, f32) {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &v) in p.iter().enumerate() {
        if Some(i) != skip && v > best.1 {
            best = (i, v);
        }
    }
    if best.1 == f32::NEG_INFINITY {
        best.1 = 0.0;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: &[&str] = &[
        "deploy the api to production",
        "ship version 2.3 to prod",
        "please deploy the frontend",
        "roll out the new release to staging",
        "push the latest build to production",
        "can you deploy billing service",
        "start a deployment of the web app",
        "release the worker to prod now",
        "deploy main branch to staging",
        "i want to deploy the backend",
        "kick off a deploy for auth service",
        "deploy build 1234",
        "promote staging to production",
        "launch the new version of the api",
        "do a production deploy of payments",
    ];
    const ROLLBACK: &[&str] = &[
        "roll back the last deploy",
        "revert production to the previous version",
        "undo the release of the api",
        "rollback billing service",
        "go back to the previous build",
        "the deploy broke things, revert it",
        "restore the old version of the frontend",
        "rollback prod please",
        "revert the worker to yesterday's release",
        "undo the last deployment",
        "roll the api back one version",
        "we need to roll back payments",
        "revert staging to build 1200",
        "cancel the new release and go back",
        "roll back auth to the stable version",
    ];
    const LOGS: &[&str] = &[
        "show me the logs of the api",
        "tail the worker logs",
        "what do the billing logs say",
        "get the last 100 log lines for auth",
        "show error logs from production",
        "fetch logs for the frontend pod",
        "i need the logs of payments",
        "print recent logs for the web app",
        "display the staging logs",
        "grep the logs for timeout errors",
        "logs for the backend please",
        "show me what the service logged",
        "dump the container logs",
        "view log output of the last job",
        "can i see the api log",
    ];
    const STATUS: &[&str] = &[
        "what is the status of production",
        "is the api up",
        "how is the billing service doing",
        "health check for auth",
        "are all services healthy",
        "is staging running",
        "check if the worker is alive",
        "status of the frontend",
        "is anything down right now",
        "how healthy is payments",
        "give me a status report",
        "is the web app responding",
        "show service health",
        "are there any outages",
        "is prod ok",
    ];
    const RESTART: &[&str] = &[
        "restart the api",
        "reboot the worker",
        "restart billing service please",
        "bounce the frontend pods",
        "can you restart auth",
        "restart all services in staging",
        "kill and restart the web app",
        "reboot the production server",
        "restart payments",
        "cycle the backend containers",
        "restart the job runner",
        "please reboot staging",
        "restart the database proxy",
        "give the api a restart",
        "restart the crashed pod",
    ];
    const OOS: &[&str] = &[
        "what is the capital of france",
        "tell me a joke",
        "how tall is mount everest",
        "what should i cook for dinner",
        "who won the football game",
        "recommend a good movie",
        "what is the meaning of life",
        "how do i bake bread",
        "translate hello into spanish",
        "what's the weather like tomorrow",
        "play some music",
        "how old is the universe",
        "book a flight to paris",
        "what is your favorite color",
        "sing me a song",
        "how many calories in an apple",
    ];

    fn small_set(with_oos: bool) -> (Vec<(&'static str, usize)>, Vec<String>) {
        let mut groups: Vec<(&str, &[&'static str])> =
            vec![("deploy", DEPLOY), ("rollback", ROLLBACK), ("logs", LOGS), ("status", STATUS), ("restart", RESTART)];
        if with_oos {
            groups.push(("oos", OOS));
        }
        let labels: Vec<String> = groups.iter().map(|g| g.0.to_string()).collect();
        let mut examples = Vec::new();
        for (i, (_, texts)) in groups.iter().enumerate() {
            for t in texts.iter() {
                examples.push((*t, i));
            }
        }
        (examples, labels)
    }

    fn name<'a>(clf: &'a Classifier, s: &Scored) -> &'a str {
        clf.labels()[s.label].as_str()
    }

    #[test]
    fn answers_unseen_paraphrases_and_rejects_unrelated() {
        let (examples, labels) = small_set(true);
        let clf = Classifier::train(&examples, &labels, &Options::default());
        let t = clf.threshold();
        assert!(t > 0.0 && t < 1.0, "threshold {t}");
        let cases = [
            ("please deploy the api to prod", "deploy"),
            ("can you roll back the frontend", "rollback"),
            ("show the logs for billing", "logs"),
            ("is the auth service healthy", "status"),
            ("please restart the worker pods", "restart"),
            ("What's the status of staging?", "status"),
            ("REVERT the last release!!", "rollback"),
        ];
        for (text, want) in cases {
            let got = clf.decide(text);
            assert_eq!(got.map(|s| name(&clf, &s)), Some(want), "{text}: {got:?}");
        }
        for text in [
            "what is the best pizza in naples",
            "how far away is the moon",
            "my cat likes to sleep on the sofa",
            "",
            "🙂🙂🙂",
        ] {
            let got = clf.decide(text);
            assert!(got.is_none(), "{text:?} accepted as {got:?}");
        }
    }

    #[test]
    fn probabilities_are_calibrated_and_sorted() {
        let (examples, labels) = small_set(true);
        let clf = Classifier::train(&examples, &labels, &Options::default());
        let all = clf.predict("restart the api", labels.len());
        assert_eq!(all.len(), labels.len());
        let sum: f32 = all.iter().map(|s| s.score).sum();
        assert!((sum - 1.0).abs() < 1e-3, "sum {sum}");
        assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(name(&clf, &all[0]), "restart");
        // Calibrated, not saturated: a clear hit is confident but not 1.0,
        // and a vague text is less confident.
        assert!(all[0].score > 0.5 && all[0].score < 0.9999, "{all:?}");
        let vague = clf.predict("the api", 1);
        assert!(vague[0].score < all[0].score);
        assert_eq!(clf.predict("restart the api", 2).len(), 2);
        assert!(clf.predict("restart the api", 0).is_empty());
    }

    #[test]
    fn threshold_without_oos_class_keeps_most_in_scope() {
        let (examples, labels) = small_set(false);
        let clf = Classifier::train(&examples, &labels, &Options::default());
        let t = clf.threshold();
        assert!(t > 0.0 && t < 1.0, "threshold {t}");
        let got = clf.decide("deploy the worker to production");
        assert_eq!(got.map(|s| name(&clf, &s)), Some("deploy"));
        assert!(clf.decide("").is_none());
    }

    #[test]
    fn never_panics_on_odd_input() {
        let (examples, labels) = small_set(true);
        let clf = Classifier::train(&examples, &labels, &Options::default());
        let long = "deploy ".repeat(600);
        let inputs = [
            "",
            " ",
            "🙂🚀🔥",
            "'''",
            "n't 's ' '' x'y'z",
            "部署生产环境",
            "развернуть сервис",
            "نشر التطبيق",
            "\u{0}\u{7f}\u{200b}",
            long.as_str(),
        ];
        for text in inputs {
            for s in clf.predict(text, 3) {
                assert!((0.0..=1.0).contains(&s.score) && s.score.is_finite());
                assert!(s.label < labels.len());
            }
            let _ = clf.decide(text);
        }
    }

    #[test]
    fn degenerate_training_sets() {
        let empty = Classifier::train(&[], &[], &Options::default());
        assert!(empty.predict("hello", 3).is_empty());
        assert!(empty.decide("hello").is_none());
        let one = ["a".to_string()];
        let single = Classifier::train(&[("hello there", 0), ("bad label", 7)], &one, &Options::default());
        assert_eq!(single.predict("hello", 5).len(), 1);
        let labels = ["x".to_string(), "y".to_string()];
        let tiny = Classifier::train(&[("alpha", 0), ("beta", 1)], &labels, &Options::default());
        assert!(tiny.threshold().is_finite());
        let _ = tiny.decide("alpha");
        let no_data = Classifier::train(&[], &labels, &Options::default());
        assert_eq!(no_data.predict("alpha", 2).len(), 2);
        assert!(no_data.decide("alpha").is_none());
    }

    #[test]
    fn training_is_deterministic() {
        let (examples, labels) = small_set(true);
        let a = Classifier::train(&examples, &labels, &Options::default());
        let b = Classifier::train(&examples, &labels, &Options::default());
        assert_eq!(a.threshold(), b.threshold());
        for text in ["deploy the api", "tell me a joke", "logs please"] {
            assert_eq!(a.predict(text, 3), b.predict(text, 3));
        }
    }

    #[test]
    fn tokenizer_folds_contractions_and_punctuation() {
        assert_eq!(tokenize("What's the API's status?", 100), ["what", "is", "the", "api", "status"]);
        assert_eq!(tokenize("I can't / won't", 100), ["i", "can", "not", "will", "not"]);
        assert_eq!(tokenize("don\u{2019}t deploy v2.31", 100), ["do", "not", "deploy", "v0", "00"]);
        assert!(tokenize("!!! ???", 100).is_empty());
        assert_eq!(tokenize("abcdef", 3), ["abc"]);
    }

    #[test]
    fn low_rank_model_learns_and_is_deterministic() {
        // Forced on the small set (normally it needs `low_rank_min_examples`),
        // with more passes since 91 examples give few SGD steps.
        let (examples, labels) = small_set(true);
        let opts = Options { low_rank_min_examples: 0, low_rank_epochs: 60, cv_epochs: 60, ..Options::default() };
        let a = Classifier::train(&examples, &labels, &opts);
        assert!(matches!(a.model, Model::LowRank(_)));
        for (text, want) in
            [("restart the api", "restart"), ("tail the worker logs", "logs"), ("rollback prod please", "rollback")]
        {
            let top = a.predict(text, 1);
            assert_eq!(name(&a, &top[0]), want, "{text}: {top:?}");
        }
        let b = Classifier::train(&examples, &labels, &opts);
        assert_eq!(a.predict("deploy the api", 3), b.predict("deploy the api", 3));
        assert!(matches!(Classifier::train(&examples, &labels, &Options::default()).model, Model::Linear(_)));
    }

    #[test]
    fn smoothed_gradient_and_dot() {
        let mut p = vec![0.7, 0.2, 0.1];
        smoothed_gradient(&mut p, 0, 0.3);
        let want = [0.7 - 0.1 - 0.7, 0.2 - 0.1, 0.1 - 0.1];
        assert!(p.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{p:?}");
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.5).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn fast_exp_and_softmax_match_libm() {
        for i in 0..=2000 {
            let x = -(i as f32) * 0.05;
            let (a, b) = (exp_nonpositive(x), x.exp());
            assert!((a - b).abs() <= 2e-7 * (1.0 - x) * b + 1e-37, "{x}: {a} vs {b}");
        }
        let mut a = vec![0.3, -2.0, 5.0, 4.9, -40.0];
        let mut b = a.clone();
        softmax_fast(&mut a);
        softmax_in_place(&mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6), "{a:?} vs {b:?}");
    }

    #[test]
    fn character_ngrams_across_words_add_spanning_ones() {
        let mut cfg = FeatureConfig {
            bits: 20,
            char_min: 3,
            char_max: 4,
            word_bigrams: true,
            char_across_words: false,
            char_weight: 1.0,
            max_chars: 100,
        };
        let within: Vec<u32> = raw_features("my balance", &cfg).iter().map(|f| f.0).collect();
        cfg.char_across_words = true;
        let across: Vec<u32> = raw_features("my balance", &cfg).iter().map(|f| f.0).collect();
        assert!(within.iter().all(|b| across.contains(b)));
        // " my balance ": "y b", "my b" and "y ba" span the two words.
        assert_eq!(across.len(), within.len() + 3);
    }

    #[test]
    fn classifier_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Classifier>();
    }
}
