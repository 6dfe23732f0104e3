"""``python -m benchmarks list | run NAME [--quick] [--output DIR] [ARGS...] | render [--check]``."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import BENCHMARKS, _meta, describe, run  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run bayesflip's benchmarks and render their results into the READMEs and the docs pages.",
        epilog=(
            "Results: the full protocol (no arguments) writes to benchmarks/results/ (committed); --quick and "
            "any changed argument write to benchmarks/results/scratch/ (git-ignored) unless --output is given. "
            "Every result JSON carries a 'meta' record (versions, git commit, machine, arguments, date)."
        ),
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the registered benchmarks")
    r = sub.add_parser(
        "run",
        help="run one benchmark",
        description="Run one benchmark. Arguments after NAME go to the benchmark itself "
        "(`python -m benchmarks run NAME --help` lists them).",
    )
    r.add_argument("name", choices=list(BENCHMARKS), metavar="NAME", help=f"one of: {', '.join(BENCHMARKS)}")
    r.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        help="passed on: --quick (smoke run), --output DIR, and the benchmark's own options",
    )
    g = sub.add_parser(
        "render",
        help="fill the <!-- name --> blocks of README.md, benchmarks/README.md and the docs pages on results",
    )
    g.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        width = max(map(len, BENCHMARKS))
        for name, module in BENCHMARKS.items():
            print(f"{name:{width}s}  benchmarks/{module}.py  {describe(name)}")
        print(
            f"\ncommitted results: {os.path.relpath(_meta.RESULTS)}; quick runs: {os.path.relpath(_meta.SCRATCH)}"
        )
        return 0
    if args.command == "run":
        sys.argv = [
            f"python -m benchmarks run {args.name}",
            *args.args,
        ]  # the benchmark's usage line and meta
        run(args.name, args.args)
        return 0
    from benchmarks import render

    changed = render.render_files(write=not args.check)
    for path in changed:
        print(f"{'out of date' if args.check else 'rendered'}: {os.path.relpath(path)}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
