"""LSTM regularization (paper §4.3, scaled down): Bayesian flipout LSTM vs none vs dropout.

Task (generated here, no downloads): next-symbol prediction on sequences from a
random order-2 Markov chain over ``--vocab`` symbols whose transition rows are
drawn from a sparse Dirichlet. The training set is deliberately small
(``--train-seqs`` sequences of ``--length`` symbols) so an unregularized LSTM
overfits. The chain's entropy rate (the best achievable validation loss) is
computed exactly from its stationary distribution and drawn as a reference line.

Models (identical except the LSTM): Embedding(vocab, 32) → LSTM(``--units``,
return_sequences) → Dense(vocab), Adam, per-token cross-entropy.

* ``none``: ``keras.layers.LSTM``;
* ``dropout``: ``keras.layers.LSTM(dropout=p, recurrent_dropout=p)`` (Keras'
  recurrent dropout reuses one mask per sequence: variational dropout, Gal &
  Ghahramani 2016);
* ``flipout_elbo``: :class:`bayesflip.layers.LSTMFlipout` trained on the
  negative ELBO per token (``kl_weight = 1 / training tokens``, ``Normal(0, 1)``
  prior, learned posterior scales), one flipout perturbation per sequence;
* ``flipout_noise``: ``LSTMFlipout`` as a weight-noise regularizer, closest to
  the paper's LSTM experiment (which used fixed multiplicative Gaussian noise):
  posterior scales frozen at ``--noise-scale``, no KL term.

Validation loss = mean per-token cross-entropy (nats) on ``--val-seqs`` fresh
sequences after every epoch; for the flipout model with the posterior mean, and
at the end also with the Monte Carlo predictive (mean of ``--mc`` sampled
predictive distributions).

Usage: ``python benchmarks/bench_lstm_regularization.py [--epochs 40]``; the
two extra settings reported in ``benchmarks/README.md`` are
``--models flipout_noise --noise-scale 0.15 --tag noise0.15`` and
``--models dropout --dropout 0.5 --tag dropout0.5``.
Writes ``benchmarks/results/lstm_regularization.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip.layers import LSTMFlipout  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class Markov2:
    """Order-2 Markov chain with Dirichlet(alpha) transition rows."""

    def __init__(self, vocab, alpha, seed):
        self.vocab = vocab
        self.rng = np.random.default_rng(seed)
        self.p = self.rng.dirichlet(np.full(vocab, alpha), size=(vocab, vocab))  # p[a, b, c] = P(c | a, b)

    def sample(self, n, length):
        seqs = np.empty((n, length), np.int64)
        seqs[:, :2] = self.rng.integers(0, self.vocab, size=(n, 2))
        cum = np.cumsum(self.p, axis=-1)
        for t in range(2, length):
            u = self.rng.random(n)[:, None]
            seqs[:, t] = np.minimum((u > cum[seqs[:, t - 2], seqs[:, t - 1]]).sum(-1), self.vocab - 1)
        return seqs

    def entropy_rate(self):
        """Exact entropy rate (nats/symbol): stationary distribution over pairs."""
        v = self.vocab
        trans = np.zeros((v * v, v * v))
        for a in range(v):
            for b in range(v):
                trans[a * v + b, b * v : (b + 1) * v] = self.p[a, b]
        w, vec = np.linalg.eig(trans.T)
        pi = np.real(vec[:, np.argmin(np.abs(w - 1))])
        pi = pi / pi.sum()
        h = -(self.p * np.log(np.clip(self.p, 1e-300, None))).sum(-1).reshape(-1)
        return float(pi @ h)


def build(kind, vocab, units, dropout, kl_weight, seed, noise_scale=0.05):
    if kind == "none":
        rnn = keras.layers.LSTM(units, return_sequences=True, seed=seed)
    elif kind == "dropout":
        rnn = keras.layers.LSTM(units, return_sequences=True, dropout=dropout, recurrent_dropout=dropout, seed=seed)
    elif kind == "flipout_elbo":
        rnn = LSTMFlipout(units, return_sequences=True, kl_weight=kl_weight, init_scale=0.01, seed=seed)
    elif kind == "flipout_noise":
        rnn = LSTMFlipout(units, return_sequences=True, kl_weight=0.0, init_scale=noise_scale, seed=seed)
    else:
        raise ValueError(f"bench_lstm_regularization: unknown model {kind!r}")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((None,), dtype="int64"), keras.layers.Embedding(vocab, 32), rnn, keras.layers.Dense(vocab)],
        name=kind,
    )
    if kind == "flipout_noise":  # fixed weight-noise scale: freeze the posterior scales
        for post in rnn.posteriors:
            post.rho.trainable = False
    return model


def token_nll(probs, targets):
    p = np.take_along_axis(probs, targets[..., None], -1)[..., 0]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def val_nll(model, x, y, bayesian):
    if bayesian:
        with bayesflip.posterior_mean(model):
            logits = model.predict(x, batch_size=256, verbose=0)
    else:
        logits = model.predict(x, batch_size=256, verbose=0)
    return token_nll(tf.nn.softmax(logits).numpy(), y)


def run(args):
    chain = Markov2(args.vocab, args.alpha, args.seed)
    train = chain.sample(args.train_seqs, args.length + 1)
    val = chain.sample(args.val_seqs, args.length + 1)
    xtr, ytr, xva, yva = train[:, :-1], train[:, 1:], val[:, :-1], val[:, 1:]
    out = {
        "task": f"order-2 Markov chain, vocab {args.vocab}, Dirichlet({args.alpha}) rows",
        "entropy_rate_nats": chain.entropy_rate(),
        "train_tokens": int(ytr.size),
        "config": vars(args),
        "models": {},
    }
    # The first two targets of a sequence are not predictable from 2 symbols of context;
    # the entropy rate is the loss floor for the rest.
    print(f"entropy rate of the source: {out['entropy_rate_nats']:.4f} nats/symbol", flush=True)
    for kind in args.models:
        model = build(kind, args.vocab, args.units, args.dropout, 1.0 / ytr.size, args.seed, args.noise_scale)
        model.compile(keras.optimizers.Adam(args.lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        bayes = kind.startswith("flipout")
        curve, train_loss = [], []
        t0 = time.time()
        for epoch in range(args.epochs):
            h = model.fit(xtr, ytr, batch_size=args.batch, epochs=1, verbose=0, shuffle=True)
            train_loss.append(float(h.history["loss"][0]))
            curve.append(val_nll(model, xva, yva, bayes))
        res = {"val_nll": curve, "train_loss": train_loss, "seconds": time.time() - t0}
        res["best_val_nll"] = float(min(curve))
        res["best_epoch"] = int(np.argmin(curve)) + 1
        res["final_val_nll"] = curve[-1]
        if bayes:
            probs = np.mean(
                [tf.nn.softmax(model.predict(xva, batch_size=256, verbose=0)).numpy() for _ in range(args.mc)], 0
            )
            res["final_val_nll_mc_predictive"] = token_nll(probs, yva)
            scales = [float(tf.reduce_mean(p.scale())) for p in model.layers[1].posteriors]
            res["mean_posterior_scale"] = scales
        out["models"][kind] = res
        extra = f", MC predictive {res['final_val_nll_mc_predictive']:.4f}" if bayes else ""
        print(
            f"[{kind:8s}] best val NLL {res['best_val_nll']:.4f} (epoch {res['best_epoch']}), final "
            f"{res['final_val_nll']:.4f}{extra}, final train loss {train_loss[-1]:.4f}, {res['seconds']:.0f} s",
            flush=True,
        )
    return out


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for kind, r in out["models"].items():
        ax.plot(np.arange(1, len(r["val_nll"]) + 1), r["val_nll"], label=kind)
    ax.axhline(out["entropy_rate_nats"], color="gray", ls=":", label="source entropy rate")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NLL (nats/token)")
    ax.set_title("LSTM regularization on a generated sequence task")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    kinds = ["none", "dropout", "flipout_elbo", "flipout_noise"]
    p.add_argument("--models", nargs="+", default=kinds, choices=kinds)
    p.add_argument("--noise-scale", type=float, default=0.05, help="fixed posterior scale of flipout_noise")
    p.add_argument("--vocab", type=int, default=10)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--train-seqs", type=int, default=64)
    p.add_argument("--val-seqs", type=int, default=256)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--mc", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=RESULTS)
    p.add_argument("--tag", default="", help="suffix of the output file names, e.g. noise0.15")
    args = p.parse_args(argv)
    out_dir = args.out
    out = run(args)
    os.makedirs(out_dir, exist_ok=True)
    stem = "lstm_regularization" + (f"_{args.tag}" if args.tag else "")
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    plot(out, os.path.join(out_dir, stem + ".png"))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
