"""The main job: a flipout BNN and a rank-1 BNN next to a deterministic net on scikit-learn's digits.

Trains the networks (same architecture, optimizer and budget) on 85 % of the
training split — the mean-field flipout BNN on the tempered posterior ``T = 0.1``
by default (``kl_weight = T / N``; ``temperature=1`` gives the Bayesian
posterior), the temperature chosen on held-out NLL
(``benchmarks/ablation_defaults.py``); the rank-1 BNN (:class:`~bayesflip.posteriors.Rank1`,
``K = 4`` components) on the Bayesian posterior with batches tiled ``K`` times —
fits a temperature for each on the remaining 15 % (held out), then reports test
accuracy, NLL, Brier score and ECE before and after temperature scaling, and the
predictive entropy / mutual information on in-distribution digits versus
corrupted (out-of-distribution) inputs. A fourth column makes the trained
deterministic net Bayesian post hoc: a last-layer KFAC Laplace approximation
(:func:`bayesflip.laplace.fit_laplace`, GLM predictive, prior precision chosen
by NLL on the held-out 15 %), no retraining. Writes ``report.json`` and PNG figures
(reliability diagrams, uncertainty histograms) into the output folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from bayesflip import calibration, uncertainty
from bayesflip._checks import check_int, check_positive_int, check_real
from bayesflip.datasets import corrupt_images, load_digits
from bayesflip.layers import DenseFlipout
from bayesflip.posteriors import Rank1
from bayesflip.recipe import (
    DEFAULT_KL_WARMUP_EPOCHS,
    DEFAULT_SCHEDULE,
    DEFAULT_TEMPERATURE,
    fit_bayesian,
    make_optimizer,
)

__all__ = [
    "DEFAULT_TEMPERATURE",
    "build_bayesian_mlp",
    "build_deterministic_mlp",
    "fit_bayesian_mlp",
    "fit_deterministic_mlp",
    "run_demo",
    "DEFAULT_RANK1_COMPONENTS",
    "DEFAULT_RANK1_SIGN_INIT",
    "DEFAULT_RANK1_PRIOR_SCALE",
    "DEFAULT_RANK1_TEMPERATURE",
]

OOD_KINDS = ("permuted", "noise")

# The BNN is trained with the recipe of bayesflip.recipe (DEFAULT_TEMPERATURE, DEFAULT_KL_WARMUP_EPOCHS
# and DEFAULT_SCHEDULE come from there: chosen on the mean held-out NLL over seeds 0–4 in
# benchmarks/ablation_defaults.py). The deterministic net gets the schedule with its own lower held-out
# NLL, which is also the cosine decay.

#: The rank-1 net: ``Rank1(num_components=4, random_sign_init=-0.5, prior_scale=0.3)``
#: (prior ``N(1, 0.3²)``, factor means initialised from ``N(1, 0.5²)``) trained on batches
#: tiled ``K`` times at ``T = 1`` (the Bayesian posterior): the lowest mean held-out
#: NLL over seeds 0–2 in ``benchmarks/ablation_rank1.py`` (``K`` 2 or 4, ``T`` 1 or
#: 0.3, sign or Gaussian init, prior scale 0.03 to 1, tiled or split batches; its
#: result is ``demo_rank1_settings.json``; the test split is not used).
DEFAULT_RANK1_COMPONENTS = 4
#: Initial factor means of the rank-1 net (``Rank1``'s ``random_sign_init``), chosen with its ``K``.
DEFAULT_RANK1_SIGN_INIT = -0.5
#: Prior scale of the rank-1 factors (``Rank1``'s ``prior_scale``; the prior is ``N(1, s²)``), chosen with
#: its ``K`` (0.03 / 0.1 / 0.3 / 1 measured; the paper's and the family's default is 0.1).
DEFAULT_RANK1_PRIOR_SCALE = 0.3
#: Posterior temperature of the rank-1 net (1: the Bayesian posterior), chosen with its ``K``.
DEFAULT_RANK1_TEMPERATURE = 1.0


def build_bayesian_mlp(
    input_dim: int,
    num_classes: int,
    hidden: Sequence[int] = (128, 128),
    estimator: str = "flipout",
    seed: int = 0,
    **layer_kwargs: Any,
) -> keras.Model:
    """An MLP of :class:`~bayesflip.layers.DenseFlipout` layers that outputs logits.

    Logits, as everywhere in bayesflip's examples: the loss applies the
    softmax (``from_logits=True``, numerically stabler than the log of a softmax
    output) and :func:`~bayesflip.uncertainty.mc_predict` averages the softmax
    of each draw (``from_logits=True``). ``layer_kwargs`` (``prior``,
    ``init_scale`` …) go to every layer.
    """
    layers = [keras.Input((input_dim,))]
    for i, units in enumerate(hidden):
        layers.append(
            DenseFlipout(
                units,
                activation="relu",
                estimator=estimator,
                seed=seed + i,
                name=f"hidden_{i}",
                **layer_kwargs,
            )
        )
    layers.append(
        DenseFlipout(
            num_classes,
            estimator=estimator,
            seed=seed + len(hidden),
            name="output",
            **layer_kwargs,
        )
    )
    return keras.Sequential(layers, name="bayesian_mlp")


def fit_bayesian_mlp(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    epochs: int = 60,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    schedule: str = "constant",
    kl_warmup_epochs: int = 0,
    tile_components: int = 1,
    verbose: int = 0,
) -> keras.callbacks.History:
    """Train a Bayesian classifier that outputs logits with :func:`bayesflip.recipe.fit_bayesian`.

    The cross-entropy from logits is the data term, accuracy is logged too.
    Unlike :func:`~bayesflip.recipe.fit_bayesian`, the defaults here are a
    constant learning rate and no warm-up (:func:`run_demo` passes the recipe's
    :data:`~bayesflip.recipe.DEFAULT_SCHEDULE` and
    :data:`~bayesflip.recipe.DEFAULT_KL_WARMUP_EPOCHS`).

    Returns:
        The Keras ``History`` (``loss``, ``nll``, ``kl``, ``accuracy``).
    """
    return fit_bayesian(
        model,
        x,
        y,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        temperature=temperature,
        kl_warmup_epochs=kl_warmup_epochs,
        schedule=schedule,
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        tile_components=tile_components,
        verbose=verbose,
    )


def _adam(
    learning_rate: float, schedule: str = "constant", total_steps: int | None = None
) -> keras.optimizers.Adam:
    """The deprecated ``bayesflip.demo.adam``: :func:`bayesflip.recipe.make_optimizer`."""
    return make_optimizer(learning_rate, schedule, total_steps=total_steps)


def fit_deterministic_mlp(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 60,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    schedule: str = "constant",
    verbose: int = 0,
) -> keras.callbacks.History:
    """Compile and train the deterministic classifier with the optimizer of :func:`fit_bayesian_mlp`.

    Returns:
        The Keras ``History`` (``loss``, ``accuracy``).
    """
    model.compile(
        make_optimizer(learning_rate, schedule, total_steps=epochs * -(-len(x) // batch_size)),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=verbose)


def build_deterministic_mlp(
    input_dim: int, num_classes: int, hidden: Sequence[int] = (128, 128)
) -> keras.Model:
    """The same MLP with ``keras.layers.Dense`` (also outputs logits)."""
    layers = [keras.Input((input_dim,))]
    layers += [keras.layers.Dense(u, activation="relu", name=f"hidden_{i}") for i, u in enumerate(hidden)]
    layers.append(keras.layers.Dense(num_classes, name="output"))
    return keras.Sequential(layers, name="deterministic_mlp")


def _softmax(logits: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(keras.ops.softmax(np.asarray(logits, "float32"), axis=-1))


def _scores(labels: np.ndarray, probs: np.ndarray) -> dict:
    return {
        "accuracy": float(np.mean(np.argmax(probs, -1) == labels)),
        "nll": calibration.negative_log_likelihood(labels, probs),
        "brier": calibration.brier_score(labels, probs),
        "ece": calibration.expected_calibration_error(labels, probs, num_bins=15),
    }


def _mc_samples(model: keras.Model, x: np.ndarray, num_samples: int) -> np.ndarray:
    return np.asarray(
        uncertainty.mc_predict(model, x, num_samples=num_samples, return_samples=True, from_logits=True)
    )


def _parameters(model: keras.Model) -> int:
    """Trainable parameters (a rank-1 net's factors and their scales included)."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _uncertainty(sample_probs: np.ndarray) -> dict:
    mean = sample_probs.mean(0)
    return {
        "predictive_entropy": float(np.mean(uncertainty.predictive_entropy(mean))),
        "mutual_information": float(np.mean(uncertainty.mutual_information(sample_probs))),
    }


def run_demo(
    output: str = "bayesflip_demo_output",
    epochs: int = 60,
    seed: int = 0,
    estimator: str = "flipout",
    num_samples: int = 32,
    batch_size: int = 64,
    learning_rate: float = 1e-2,
    posterior_temperature: float = DEFAULT_TEMPERATURE,
    kl_warmup_epochs: int = DEFAULT_KL_WARMUP_EPOCHS,
    schedule: str = DEFAULT_SCHEDULE,
    rank1_components: int = DEFAULT_RANK1_COMPONENTS,
    rank1_temperature: float = DEFAULT_RANK1_TEMPERATURE,
    laplace: bool = True,
    verbose: int = 1,
) -> dict:
    """Train, evaluate and compare; write ``report.json`` to ``output``.

    Args:
        output: output folder (created if missing).
        epochs: training epochs of each network (>= 1).
        seed: seed of the split, the initializers and the layers' random streams.
        estimator: ``"flipout"``, ``"shared"`` or ``"local"``.
        num_samples: posterior samples of the Monte Carlo predictive (>= 1).
        batch_size: mini-batch size (>= 1).
        learning_rate: Adam learning rate (> 0).
        posterior_temperature: posterior temperature ``T`` of the BNN (> 0):
            ``kl_weight = T / N``; 1 is the Bayesian posterior, the default 0.1
            a tempered one (see :func:`bayesflip.set_kl_weight`). Not to be
            confused with the temperature-scaling step, which is reported as
            ``temperature`` per network.
        kl_warmup_epochs: epochs of linear KL warm-up of the BNN (0: none).
        schedule: learning-rate schedule of the networks, ``"cosine"``
            (decay to 0 over the run) or ``"constant"``.
        rank1_components: components ``K`` of the rank-1 BNN (0: no rank-1 net).
        rank1_temperature: posterior temperature of the rank-1 BNN (> 0).
        laplace: also fit a last-layer KFAC Laplace approximation to the trained
            deterministic net (GLM predictive; prior precision by NLL on the
            held-out split, the one temperature scaling uses) and report it
            as ``"laplace"``, with its fit time against the net's training time.
        verbose: 0 silent, 1 progress bars and a summary table.

    Returns:
        The report as a dict (also written as JSON).
    """
    epochs = check_positive_int("run_demo", "epochs", epochs)
    num_samples = check_positive_int("run_demo", "num_samples", num_samples)
    batch_size = check_positive_int("run_demo", "batch_size", batch_size)
    kl_warmup_epochs = check_int("run_demo", "kl_warmup_epochs", kl_warmup_epochs, minimum=0)
    learning_rate = check_real("run_demo", "learning_rate", learning_rate, low=0)
    posterior_temperature = check_real("run_demo", "posterior_temperature", posterior_temperature, low=0)
    rank1_components = check_int("run_demo", "rank1_components", rank1_components, minimum=0)
    rank1_temperature = check_real("run_demo", "rank1_temperature", rank1_temperature, low=0)
    os.makedirs(output, exist_ok=True)
    data = load_digits(seed=seed)
    x_train, x_val, y_train, y_val = _holdout(data.x_train, data.y_train, seed)
    n_train, dim = x_train.shape
    num_classes = int(data.y_train.max()) + 1
    fit_kwargs = dict(epochs=epochs, batch_size=batch_size, verbose=2 if verbose else 0)
    report: dict = {
        "versions": _versions(),
        "config": {
            "epochs": epochs,
            "seed": seed,
            "estimator": estimator,
            "num_samples": num_samples,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "posterior_temperature": posterior_temperature,
            "kl_weight": posterior_temperature / n_train,
            "kl_warmup_epochs": kl_warmup_epochs,
            "schedule": schedule,
            "posterior": "Bayesian (T = 1)"
            if posterior_temperature == 1
            else f"tempered (T = {posterior_temperature:g})",
            "rank1_components": rank1_components,
            "rank1_sign_init": DEFAULT_RANK1_SIGN_INIT,
            "rank1_prior_scale": DEFAULT_RANK1_PRIOR_SCALE,
            "rank1_temperature": rank1_temperature,
            "train_examples": int(n_train),
            "temperature_examples": int(len(x_val)),
            "test_examples": int(len(data.x_test)),
        },
    }

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    det = build_deterministic_mlp(dim, num_classes)
    if verbose:
        print(f"Training the deterministic network ({epochs} epochs)")
    fit_deterministic_mlp(det, x_train, y_train, learning_rate=learning_rate, schedule=schedule, **fit_kwargs)
    det_time = time.perf_counter() - t0
    if laplace:
        from bayesflip.laplace import fit_laplace

        t0 = time.perf_counter()
        approximation = fit_laplace(
            det,
            x_train,
            y_train,
            likelihood="categorical",
            subset_of_weights="last_layer",
            hessian_structure="kron",
            verbose=0,
        ).optimize_prior_precision(method="val_nll", x_val=x_val, y_val=y_val)
        laplace_time = time.perf_counter() - t0

    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    bnn = build_bayesian_mlp(dim, num_classes, estimator=estimator, seed=seed)
    if verbose:
        print(
            f"Training the Bayesian network ({estimator}, {epochs} epochs, "
            f"{report['config']['posterior']} posterior: kl_weight = {posterior_temperature:g}/{n_train})"
        )
    history = fit_bayesian_mlp(
        bnn,
        x_train,
        y_train,
        temperature=posterior_temperature,
        learning_rate=learning_rate,
        schedule=schedule,
        kl_warmup_epochs=kl_warmup_epochs,
        **fit_kwargs,
    )
    bayesian = {"bayesian": (bnn, history, time.perf_counter() - t0)}

    if rank1_components:
        keras.utils.set_random_seed(seed)
        t0 = time.perf_counter()
        rank1 = build_bayesian_mlp(
            dim,
            num_classes,
            seed=seed,
            posterior=Rank1(
                num_components=rank1_components,
                random_sign_init=DEFAULT_RANK1_SIGN_INIT,
                prior_scale=DEFAULT_RANK1_PRIOR_SCALE,
            ),
        )
        if verbose:
            print(
                f"Training the rank-1 network ({rank1_components} components, {epochs} epochs, batches "
                f"tiled {rank1_components} times, kl_weight = {rank1_temperature:g}/{n_train})"
            )
        history = fit_bayesian_mlp(
            rank1,
            x_train,
            y_train,
            temperature=rank1_temperature,
            learning_rate=learning_rate,
            schedule=schedule,
            kl_warmup_epochs=kl_warmup_epochs,
            tile_components=rank1_components,
            **fit_kwargs,
        )
        bayesian["rank1"] = (rank1, history, time.perf_counter() - t0)

    det_logits = {"val": det.predict(x_val, verbose=0), "test": det.predict(data.x_test, verbose=0)}
    det_probs = _softmax(det_logits["test"])
    report["deterministic"] = _scores(data.y_test, det_probs) | {
        "train_seconds": det_time,
        "parameters": _parameters(det),
    }
    # Temperature scaling, fitted on the held-out split and applied to the test
    # predictions: on the logits of the deterministic net, on the log of the
    # MC-averaged predictive of a Bayesian net (the predictive has no logits of its own).
    scalings = {"deterministic": calibration.TemperatureScaling().fit(det_logits["val"], y_val)}
    # (probabilities, inputs of the fitted scaling, from_probs) on the test split
    test_predictions = {"deterministic": (det_probs, det_logits["test"], False)}
    if laplace:
        laplace_probs = approximation.predict(data.x_test)
        report["laplace"] = _scores(data.y_test, laplace_probs) | {
            "fit_seconds": laplace_time,
            "fit_fraction_of_training": laplace_time / det_time,
            "parameters": _parameters(det),
            "prior_precision": float(np.mean(approximation.prior_precision)),
            "approximation": "last-layer KFAC, GGN, GLM predictive (probit), prior precision by held-out NLL",
        }
        scalings["laplace"] = calibration.TemperatureScaling().fit(
            approximation.predict(x_val), y_val, from_probs=True
        )
        test_predictions["laplace"] = (laplace_probs, laplace_probs, True)
        laplace_entropy_id = uncertainty.predictive_entropy(laplace_probs)
    samples = {}
    for net, (model, history, seconds) in bayesian.items():
        samples[net] = _mc_samples(model, data.x_test, num_samples)
        probs = samples[net].mean(0)
        report[net] = _scores(data.y_test, probs) | {
            "train_seconds": seconds,
            "parameters": _parameters(model),
            "final_train_nll": float(history.history["nll"][-1]),
            "final_train_kl": float(history.history["kl"][-1]),
        }
        val_probs = _mc_samples(model, x_val, num_samples).mean(0)
        scalings[net] = calibration.TemperatureScaling().fit(val_probs, y_val, from_probs=True)
        test_predictions[net] = (probs, probs, True)
    for net, (probs, inputs, from_probs) in test_predictions.items():
        scaling = scalings[net]
        scaled = scaling.predict_probs(inputs, from_probs=from_probs)
        report[net]["temperature"] = scaling.temperature
        report[net]["after_temperature_scaling"] = _scores(data.y_test, scaled)
        for suffix, p in (("", probs), ("_temperature_scaled", scaled)):
            calibration.reliability_diagram(
                data.y_test,
                p,
                num_bins=15,
                title=f"{net}{suffix.replace('_', ' ')}",
                path=os.path.join(output, f"reliability_{net}{suffix}.png"),
            )

    # Uncertainty on test digits vs corrupted ones. The keys of the flipout BNN
    # stay where they always were; other Bayesian nets report under their name.
    det_entropy_id = uncertainty.predictive_entropy(det_probs)
    unc: dict = {
        "in_distribution": _uncertainty(samples["bayesian"])
        | {"deterministic_entropy": float(np.mean(det_entropy_id))}
    }
    for net in bayesian:
        if net != "bayesian":
            unc["in_distribution"][net] = _uncertainty(samples[net])
    if laplace:  # the GLM predictive's probabilities (no weight draws): entropy only
        unc["in_distribution"]["laplace"] = {"predictive_entropy": float(np.mean(laplace_entropy_id))}
    for kind in OOD_KINDS:
        x_ood = corrupt_images(data.x_test, kind, seed=seed)
        det_ood = _softmax(det.predict(x_ood, verbose=0))
        unc[kind] = {
            "deterministic_entropy": float(np.mean(uncertainty.predictive_entropy(det_ood))),
            "auroc_entropy_deterministic": uncertainty.ood_auroc(
                det_entropy_id, uncertainty.predictive_entropy(det_ood)
            ),
        }
        if laplace:
            laplace_entropy_ood = uncertainty.predictive_entropy(approximation.predict(x_ood))
            unc[kind]["laplace"] = {
                "predictive_entropy": float(np.mean(laplace_entropy_ood)),
                "auroc_entropy_laplace": uncertainty.ood_auroc(laplace_entropy_id, laplace_entropy_ood),
            }
        for net, (model, _, _) in bayesian.items():
            ood_samples = _mc_samples(model, x_ood, num_samples)
            entropy_in = uncertainty.predictive_entropy(samples[net].mean(0))
            entropy_out = uncertainty.predictive_entropy(ood_samples.mean(0))
            scores = _uncertainty(ood_samples) | {
                f"auroc_entropy_{net}": uncertainty.ood_auroc(entropy_in, entropy_out)
            }
            if net == "bayesian":
                unc[kind].update(scores)
                for score, bnn_in, bnn_out in (
                    ("predictive entropy", entropy_in, entropy_out),
                    (
                        "mutual information",
                        uncertainty.mutual_information(samples[net]),
                        uncertainty.mutual_information(ood_samples),
                    ),
                ):
                    calibration.uncertainty_histogram(
                        np.asarray(bnn_in),
                        np.asarray(bnn_out),
                        score_name=score,
                        labels=("test digits", f"{kind} digits"),
                        title=f"Bayesian MLP: {score}",
                        path=os.path.join(output, f"uncertainty_{kind}_{score.split()[0]}.png"),
                    )
            else:
                unc[kind][net] = scores
    report["uncertainty"] = unc

    path = os.path.join(output, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    report["report_path"] = path
    if verbose:
        _print_summary(report)
    return report


def _versions() -> dict:
    """The library versions a report depends on (results are bit-reproducible only with the same ones)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version(), "machine": platform.machine()}
    for package in ("bayesflip", "tensorflow", "keras", "tensorflow-probability", "numpy", "scikit-learn"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover - e.g. a source checkout on sys.path
            out[package] = None
    return out


def _holdout(x, y, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=0.15, random_state=seed, stratify=y)


def _print_summary(report: dict) -> None:
    nets = [net for net in ("deterministic", "bayesian", "rank1", "laplace") if net in report]
    names = {"deterministic": "deterministic", "bayesian": "flipout", "rank1": "rank-1", "laplace": "Laplace"}
    print("\nTest set (digits)        " + "".join(f"{names[n]:>15}" for n in nets))
    print(f"  (flipout BNN: {report['config']['posterior']} posterior)")

    def row(label: str, values: list, fmt: str = ".4f") -> None:
        print(f"  {label:<24}" + "".join(f"{v:>15{fmt}}" for v in values))

    for key in ("accuracy", "nll", "brier", "ece"):
        row(key, [report[n][key] for n in nets])
    row("parameters", [report[n]["parameters"] for n in nets], "d")
    row("temperature (held out)", [report[n]["temperature"] for n in nets], ".3f")
    for key in ("nll", "brier", "ece"):
        row(f"{key} (temp. scaled)", [report[n]["after_temperature_scaling"][key] for n in nets])
    print("\nMean predictive entropy (nats) / mutual information; AUROC of the entropy (in vs out)")
    for kind, vals in report["uncertainty"].items():
        line = f"  {kind:<18} det {vals['deterministic_entropy']:.3f}"
        line += f"  flipout {vals['predictive_entropy']:.3f} / MI {vals['mutual_information']:.3f}"
        if "rank1" in vals:
            line += f"  rank-1 {vals['rank1']['predictive_entropy']:.3f} / MI {vals['rank1']['mutual_information']:.3f}"
        if "auroc_entropy_bayesian" in vals:
            line += f"  AUROC det {vals['auroc_entropy_deterministic']:.3f} flipout {vals['auroc_entropy_bayesian']:.3f}"
            if "rank1" in vals:
                line += f" rank-1 {vals['rank1']['auroc_entropy_rank1']:.3f}"
            if "laplace" in vals:
                line += f" Laplace {vals['laplace']['auroc_entropy_laplace']:.3f}"
        print(line)
    print(f"\nReport written to {report['report_path']}")


def __getattr__(name: str) -> Any:
    if name == "adam":
        import warnings

        warnings.warn(
            "bayesflip.demo.adam is deprecated and will be removed: use keras.optimizers.Adam "
            "(with keras.optimizers.schedules.CosineDecay for the cosine schedule).",
            DeprecationWarning,
            stacklevel=2,
        )
        return _adam
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
