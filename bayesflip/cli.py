"""Command-line interface: ``bayesflip demo`` (and ``python -m bayesflip demo``)."""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Sequence

from bayesflip import demo as demo_lib
from bayesflip.layers._variational import ESTIMATORS

#: ``run_demo``'s defaults, the one place they are stated (shown by ``--help``).
_DEMO_DEFAULTS = {name: p.default for name, p in inspect.signature(demo_lib.run_demo).parameters.items()}


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "positive")
_non_negative_int = _int_at_least(0, "non-negative")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesflip", description="Bayesian neural networks with flipout.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a flipout BNN and a deterministic net on scikit-learn's digits")
    demo.add_argument(
        "--output", default=_DEMO_DEFAULTS["output"], help="output folder (default: %(default)s)"
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=_DEMO_DEFAULTS["epochs"],
        help="training epochs (default: %(default)s)",
    )
    demo.add_argument(
        "--seed", type=int, default=_DEMO_DEFAULTS["seed"], help="random seed (default: %(default)s)"
    )
    demo.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=_DEMO_DEFAULTS["estimator"],
        help="gradient estimator (default: %(default)s)",
    )
    demo.add_argument(
        "--num-samples",
        type=_positive_int,
        default=_DEMO_DEFAULTS["num_samples"],
        help="posterior samples for prediction (default: %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive_int,
        default=_DEMO_DEFAULTS["batch_size"],
        help="mini-batch size (default: %(default)s)",
    )
    demo.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=_DEMO_DEFAULTS["learning_rate"],
        help="Adam learning rate (default: %(default)s)",
    )
    demo.add_argument(
        "--kl-warmup-epochs",
        type=_non_negative_int,
        default=_DEMO_DEFAULTS["kl_warmup_epochs"],
        help="epochs of linear KL warm-up of the BNN, 0 for none (default: %(default)s)",
    )
    demo.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default=_DEMO_DEFAULTS["schedule"],
        help="learning-rate schedule of both networks (default: %(default)s)",
    )
    demo.add_argument(
        "--posterior-temperature",
        type=_positive_float,
        default=_DEMO_DEFAULTS["posterior_temperature"],
        help="posterior temperature of the BNN: kl_weight = T / N; 1 is the Bayesian posterior, "
        "the default %(default)s a tempered one chosen on held-out NLL",
    )
    demo.add_argument(
        "--rank1-components",
        type=_non_negative_int,
        default=_DEMO_DEFAULTS["rank1_components"],
        help="mixture components of the rank-1 BNN, 0 for no rank-1 net (default: %(default)s)",
    )
    demo.add_argument(
        "--rank1-temperature",
        type=_positive_float,
        default=_DEMO_DEFAULTS["rank1_temperature"],
        help="posterior temperature of the rank-1 BNN (default: %(default)s)",
    )
    demo.add_argument(
        "--no-laplace",
        dest="laplace",
        action="store_false",
        help="skip the last-layer Laplace approximation of the deterministic net",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesflip`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            print(f"bayesflip demo: --output {args.output!r} exists and is not a folder", file=sys.stderr)
            return 2
        try:
            os.makedirs(args.output, exist_ok=True)
        except OSError as err:
            print(f"bayesflip demo: cannot create --output folder {args.output!r}: {err}", file=sys.stderr)
            return 2
        demo_lib.run_demo(
            output=args.output,
            epochs=args.epochs,
            seed=args.seed,
            estimator=args.estimator,
            num_samples=args.num_samples,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            posterior_temperature=args.posterior_temperature,
            kl_warmup_epochs=args.kl_warmup_epochs,
            schedule=args.schedule,
            rank1_components=args.rank1_components,
            rank1_temperature=args.rank1_temperature,
            laplace=args.laplace,
            verbose=0 if args.quiet else 1,
        )
    return 0
