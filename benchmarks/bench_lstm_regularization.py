"""LSTM regularization (paper §4.3, scaled down): flipout weight noise vs dropout vs nothing.

Task (generated here, no downloads): next-symbol prediction on sequences from a
random order-2 Markov chain over ``--vocab`` symbols whose transition rows are
drawn from a sparse Dirichlet. The training set is deliberately small
(``--train-seqs`` sequences of ``--length`` symbols) so an unregularized LSTM
overfits. The chain's entropy rate (the best achievable loss) is computed
exactly from its stationary distribution and drawn as a reference line. The
task and its data are fixed by ``--data-seed``; the training seeds change the
initialisation, the noise and the batch order only.

Models (identical except the LSTM): Embedding(vocab, 32) → LSTM(``--units``,
return_sequences) → Dense(vocab), Adam, per-token cross-entropy, the same
epochs and batch size for every model.

* ``none``: ``keras.layers.LSTM``;
* ``dropout``: ``keras.layers.LSTM(dropout=p, recurrent_dropout=p)`` (Keras'
  recurrent dropout reuses one mask per sequence: variational dropout, Gal &
  Ghahramani 2016); strength = ``p``;
* ``flipout_mult``: :class:`bayesflip.layers.LSTMFlipout` with
  ``posterior=GaussianDropConnect(rate=p)``: fixed **multiplicative** Gaussian
  weight noise ``W = θ ∘ (1 + √α ε)``, ``α = p / (1 − p)``, no KL — the flipout
  paper's LSTM setting; strength = ``p``;
* ``flipout_noise``: ``LSTMFlipout`` with **additive** Gaussian weight noise
  ``W = θ + s ε``, the posterior scales frozen at ``s``, no KL; strength = ``s``;
* ``flipout_elbo``: ``LSTMFlipout`` trained on the negative ELBO per token
  (``kl_weight = 1 / training tokens``, ``Normal(0, 1)`` prior, learned
  posterior scales from 0.01);
* ``flipout_vd``: ``LSTMFlipout`` with ``posterior=VariationalDropout()``
  (learned per-weight ``α``, log-uniform prior, ``kl_weight = 1 / training
  tokens``; weights with ``log α > 3`` pruned in posterior-mean predictions).

One perturbation per sequence for every flipout model (drawn once, reused at
every step), one dropout mask per sequence for ``dropout``.

Protocol. The three regularizers with a strength (``dropout``, ``flipout_mult``,
``flipout_noise``) each get the same number of tried strengths (four by
default: ``--dropout-rates``, ``--mult-rates``, ``--noise-scales``), each
trained once with ``--sweep-seed``; the strength with the lowest best-epoch
validation NLL is kept. The grids were set after a three-point pilot (rates
0.3/0.5/0.7, scales 0.05/0.15/0.3) picked the largest rate for both
rate-based models and the middle scale (0.3 predicted the uniform
distribution): the rates got one point above, the scales two points around
0.15. Every model is then trained with each of ``--seeds`` (not the sweep
seed) and reported as mean, standard deviation, min and max over seeds.

Validation NLL = mean per-token cross-entropy (nats) on ``--val-seqs`` fresh
sequences after every epoch, of the deterministic network: the posterior mean
``θ`` for flipout models, the weight-scaled network for dropout. At the end
also the Monte Carlo predictive (mean of ``--mc`` sampled predictive
distributions: independent posterior draws for flipout, fresh dropout masks
for dropout, i.e. MC dropout) on validation, and both on ``--test-seqs``
further sequences that no choice looked at.

Usage: ``python -m benchmarks run lstm_regularization`` (the committed run);
``--quick`` is a smoke test. Writes ``lstm_regularization.json`` (output folder: see ``benchmarks/_meta.py``)
and ``.png``.
"""

from __future__ import annotations

import argparse
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
from bayesflip.posteriors import GaussianDropConnect, VariationalDropout, sparsity  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402

KINDS = ["none", "dropout", "flipout_mult", "flipout_noise", "flipout_elbo", "flipout_vd"]
#: models with a strength to choose, and the argparse attribute holding their candidates
SWEPT = {"dropout": "dropout_rates", "flipout_mult": "mult_rates", "flipout_noise": "noise_scales"}
LABELS = {
    "none": "none",
    "dropout": "dropout, rate {s:g} (input + recurrent)",
    "flipout_mult": "flipout multiplicative noise (Gaussian DropConnect), rate {s:g}",
    "flipout_noise": "flipout additive noise, scale {s:g}",
    "flipout_elbo": "flipout Bayesian (ELBO, learned scales)",
    "flipout_vd": "flipout variational dropout (learned α, KL)",
}
METRICS = [
    "best_val_nll",
    "final_val_nll",
    "final_val_nll_mc_predictive",
    "final_test_nll",
    "final_test_nll_mc_predictive",
    "final_train_loss",
]


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


def build(kind, vocab, units, strength, kl_weight, seed):
    """The model of ``kind``; ``strength`` is the dropout/DropConnect rate or the additive noise scale."""
    if kind == "none":
        rnn = keras.layers.LSTM(units, return_sequences=True, seed=seed)
    elif kind == "dropout":
        rnn = keras.layers.LSTM(
            units, return_sequences=True, dropout=strength, recurrent_dropout=strength, seed=seed
        )
    elif kind == "flipout_mult":
        mult = GaussianDropConnect(rate=strength)
        rnn = LSTMFlipout(units, return_sequences=True, posterior=mult, seed=seed)
    elif kind == "flipout_noise":
        rnn = LSTMFlipout(units, return_sequences=True, kl_weight=0.0, init_scale=strength, seed=seed)
    elif kind == "flipout_elbo":
        rnn = LSTMFlipout(units, return_sequences=True, kl_weight=kl_weight, init_scale=0.01, seed=seed)
    elif kind == "flipout_vd":
        vd = VariationalDropout()
        rnn = LSTMFlipout(units, return_sequences=True, posterior=vd, kl_weight=kl_weight, seed=seed)
    else:
        raise ValueError(f"bench_lstm_regularization: unknown model {kind!r}; expected one of {KINDS}.")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int64"),
            keras.layers.Embedding(vocab, 32),
            rnn,
            keras.layers.Dense(vocab),
        ],
        name=kind,
    )
    if kind == "flipout_noise":  # fixed additive weight-noise scale: freeze the posterior scales
        for post in rnn.posteriors:
            post.rho.trainable = False
    return model


def token_nll(probs, targets):
    p = np.take_along_axis(probs, targets[..., None], -1)[..., 0]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def _probabilities(model, training):
    @tf.autograph.experimental.do_not_convert  # nothing to convert; the layers convert themselves
    def fn(x):
        return tf.nn.softmax(model(x, training=training))

    return tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.int64)])


class Evaluator:
    """Compiled predictive probabilities of one model: deterministic and sampled.

    ``mean``: the deterministic network — the posterior mean ``θ`` of a flipout
    model, the weight-scaled network of a dropout model. ``sampled``: one
    random network per call — a posterior draw of a flipout model (one ``ΔW``
    per call), fresh dropout masks (``training=True``) for a dropout model (MC
    dropout); ``None`` for the unregularized LSTM.

    ``bayesflip.posterior_mean`` resets Keras' compiled predict function on
    entry and exit, so using it every epoch retraces the 50-step LSTM each time
    (about as long as the epoch's training here). Instead one function is traced
    once inside the context (the mode is fixed at trace time) and, at the end,
    checked against ``posterior_mean`` + ``predict``.
    """

    def __init__(self, model, kind):
        self.model, self.bayesian = model, kind.startswith("flipout")
        self.mean = _probabilities(model, training=False)
        if self.bayesian:
            with bayesflip.posterior_mean(model):
                self.mean.get_concrete_function()
            self.sampled = _probabilities(model, training=False)
        else:
            self.sampled = _probabilities(model, training=True) if kind == "dropout" else None

    def mean_nll(self, x, y):
        """NLL of the deterministic network."""
        return token_nll(self.mean(tf.constant(x)).numpy(), y)

    def mc_nll(self, x, y, samples):
        """NLL of the Monte Carlo predictive: mean of ``samples`` independent sampled predictives."""
        x = tf.constant(x)
        return token_nll(np.mean([self.sampled(x).numpy() for _ in range(samples)], 0), y)

    def check(self, x):
        """The traced deterministic function equals ``predict`` (inside ``posterior_mean`` for flipout)."""
        if self.bayesian:
            with bayesflip.posterior_mean(self.model):
                reference = tf.nn.softmax(self.model.predict(x, batch_size=256, verbose=0)).numpy()
        else:
            reference = tf.nn.softmax(self.model.predict(x, batch_size=256, verbose=0)).numpy()
        np.testing.assert_allclose(self.mean(tf.constant(x)).numpy(), reference, rtol=1e-4, atol=1e-6)


def train_one(kind, strength, seed, data, args):
    """Train one model with one seed; returns its curves and end-of-training metrics."""
    (xtr, ytr), (xva, yva), (xte, yte) = data
    model = build(kind, args.vocab, args.units, strength, 1.0 / ytr.size, seed)
    model.compile(
        keras.optimizers.Adam(args.lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    bayes = kind.startswith("flipout")
    ev = Evaluator(model, kind)
    curve, train_loss = [], []
    t0 = time.time()
    for _ in range(args.epochs):
        h = model.fit(xtr, ytr, batch_size=args.batch, epochs=1, verbose=0, shuffle=True)
        train_loss.append(float(h.history["loss"][0]))
        curve.append(ev.mean_nll(xva, yva))
    res = {"seed": seed, "strength": strength, "val_nll": curve, "train_loss": train_loss}
    res["best_val_nll"] = float(min(curve))
    res["best_epoch"] = int(np.argmin(curve)) + 1
    res["final_val_nll"] = curve[-1]
    res["final_train_loss"] = train_loss[-1]
    ev.check(xva)
    res["final_test_nll"] = ev.mean_nll(xte, yte)
    if ev.sampled is not None:
        res["final_val_nll_mc_predictive"] = ev.mc_nll(xva, yva, args.mc)
        res["final_test_nll_mc_predictive"] = ev.mc_nll(xte, yte, args.mc)
    if bayes:
        rnn = model.layers[1]
        if kind in ("flipout_noise", "flipout_elbo"):
            res["mean_posterior_scale"] = [float(tf.reduce_mean(p.scale())) for p in rnn.posteriors]
        else:
            res["mean_log_alpha"] = [float(tf.reduce_mean(p.log_alpha())) for p in rnn.posteriors]
        if kind == "flipout_vd":
            res["pruned_fraction"] = sparsity(model).fraction
    res["seconds"] = time.time() - t0
    extra = f", MC predictive {res['final_val_nll_mc_predictive']:.4f}" if ev.sampled is not None else ""
    print(
        f"[{kind:13s} {strength if strength is not None else '-'!s:>5} seed {seed}] best val NLL "
        f"{res['best_val_nll']:.4f} (epoch {res['best_epoch']}), final {res['final_val_nll']:.4f}{extra}, "
        f"test {res['final_test_nll']:.4f}, train loss {train_loss[-1]:.4f}, {res['seconds']:.0f} s",
        flush=True,
    )
    return res


def _stats(values):
    v = np.asarray(values, float)
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "values": [float(x) for x in v],
    }


def summarize(runs):
    """Mean/sd/min/max over seeds of every metric a model has."""
    summary = {}
    for kind, rs in runs.items():
        row = {"strength": rs[0]["strength"], "seeds": [r["seed"] for r in rs]}
        for m in METRICS + ["best_epoch", "pruned_fraction"]:
            if m in rs[0]:
                row[m] = _stats([r[m] for r in rs])
        summary[kind] = row
    return summary


def run(args):
    chain = Markov2(args.vocab, args.alpha, args.data_seed)
    train = chain.sample(args.train_seqs, args.length + 1)
    val = chain.sample(args.val_seqs, args.length + 1)
    test = chain.sample(args.test_seqs, args.length + 1)
    data = tuple((s[:, :-1], s[:, 1:]) for s in (train, val, test))
    out = {
        "task": f"order-2 Markov chain, vocab {args.vocab}, Dirichlet({args.alpha}) rows",
        "entropy_rate_nats": chain.entropy_rate(),
        "train_tokens": int(data[0][1].size),
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "sweep": {},
        "chosen": {},
        "runs": {},
    }
    t_start = time.time()
    # The first two targets of a sequence are not predictable from 2 symbols of context;
    # the entropy rate is the loss floor for the rest.
    print(f"entropy rate of the source: {out['entropy_rate_nats']:.4f} nats/symbol", flush=True)
    for kind in args.models:
        if kind not in SWEPT:
            out["chosen"][kind] = None
            continue
        candidates = getattr(args, SWEPT[kind])
        sweep = {f"{s:g}": train_one(kind, s, args.sweep_seed, data, args) for s in candidates}
        out["sweep"][kind] = sweep
        out["chosen"][kind] = min(candidates, key=lambda s: sweep[f"{s:g}"]["best_val_nll"])
        print(f"[{kind}] chosen strength {out['chosen'][kind]:g}", flush=True)
    for kind in args.models:
        out["runs"][kind] = [train_one(kind, out["chosen"][kind], seed, data, args) for seed in args.seeds]
    out["summary"] = summarize(out["runs"])
    out["seconds_total"] = time.time() - t_start
    return out


def label(kind, strength):
    return LABELS[kind].format(s=strength) if strength is not None else LABELS[kind]


def _cell(stats, digits=3):
    if stats is None:
        return "—"
    mean, sd, low, high = (f"{stats[k]:.{digits}f}" for k in ("mean", "sd", "min", "max"))
    return f"{mean} ± {sd} ({low}–{high})"


def summary_markdown(out) -> str:
    """The README table: mean ± sd (min–max) over seeds, one row per model."""
    lines = [
        "| LSTM | best val NLL | final val NLL | final val NLL, MC predictive | final test NLL "
        "| final test NLL, MC predictive | final train loss |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, row in out["summary"].items():
        cells = [_cell(row.get(m)) for m in METRICS]
        lines.append(f"| {label(kind, row['strength'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep_markdown(out) -> str:
    """The strength sweep (sweep seed only): best-epoch validation NLL of every tried strength."""
    seed = out["config"]["sweep_seed"]
    lines = [f"| model | strength: best val NLL (seed {seed}) | chosen |", "|---|---|---:|"]
    for kind, sweep in out["sweep"].items():
        tried = ", ".join(f"{s}: {r['best_val_nll']:.3f}" for s, r in sweep.items())
        lines.append(f"| {kind} | {tried} | {out['chosen'][kind]:g} |")
    return "\n".join(lines) + "\n"


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    for kind, rs in out["runs"].items():
        curves = np.array([r["val_nll"] for r in rs])
        epochs = np.arange(1, curves.shape[1] + 1)
        (line,) = ax.plot(epochs, curves.mean(0), label=label(kind, rs[0]["strength"]))
        ax.fill_between(epochs, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(out["entropy_rate_nats"], color="gray", ls=":", label="source entropy rate")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NLL (nats/token)")
    ax.set_ylim(out["entropy_rate_nats"] - 0.1, min(ax.get_ylim()[1], 4.5))
    ax.set_title(f"mean over seeds {out['config']['seeds']}, shaded min–max")
    ax.legend(fontsize=7)
    for kind, sweep in out["sweep"].items():
        xs = [float(s) for s in sweep]
        ax2.plot(xs, [r["best_val_nll"] for r in sweep.values()], "o-", label=f"{kind} best")
        ax2.plot(
            xs,
            [r["final_val_nll"] for r in sweep.values()],
            "x--",
            color=ax2.lines[-1].get_color(),
            label=f"{kind} final",
        )
    ax2.set_xlabel("strength (rate, or additive scale)")
    ax2.set_ylabel("validation NLL")
    ax2.set_title(f"strength sweep, seed {out['config']['sweep_seed']}")
    ax2.legend(fontsize=7)
    fig.suptitle("LSTM regularization on a generated sequence task")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=KINDS, choices=KINDS)
    p.add_argument("--dropout-rates", nargs="+", type=float, default=[0.3, 0.5, 0.7, 0.85])
    p.add_argument("--mult-rates", nargs="+", type=float, default=[0.3, 0.5, 0.7, 0.85])
    p.add_argument("--noise-scales", nargs="+", type=float, default=[0.05, 0.1, 0.15, 0.2])
    p.add_argument("--vocab", type=int, default=10)
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--train-seqs", type=int, default=64)
    p.add_argument("--val-seqs", type=int, default=256)
    p.add_argument("--test-seqs", type=int, default=256)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--mc", type=int, default=16)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--sweep-seed", type=int, default=0)
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--quick", action="store_true", help="smoke test: tiny model, 2 epochs, 2 seeds")
    p.add_argument(
        "--output", "--out", dest="out", default=None, help="output folder (default: see benchmarks/_meta.py)"
    )
    args = p.parse_args(argv)
    output_dir(p, args, dest="out")
    if args.quick:
        args.units, args.epochs, args.train_seqs, args.val_seqs, args.test_seqs = 8, 2, 8, 8, 8
        args.length, args.mc, args.seeds = 6, 2, args.seeds[:2]
        args.dropout_rates, args.mult_rates, args.noise_scales = [0.3, 0.5], [0.3, 0.5], [0.05, 0.15]
    out = run(args)
    out = write_json(os.path.join(args.out, "lstm_regularization.json"), out, args)
    plot(out, os.path.join(args.out, "lstm_regularization.png"))
    print(summary_markdown(out))
    print(sweep_markdown(out))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
