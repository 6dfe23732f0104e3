"""The main job's committed report: ``bayesflip demo`` with its defaults, plus the metadata record.

``python -m benchmarks run main_job`` runs :func:`bayesflip.demo.run_demo` into
``benchmarks/results/demo/`` (``--quick``: 3 epochs and 4 samples, into the scratch
folder) and rewrites its ``report.json`` with the record every result carries
(versions, git commit, machine, arguments, date). The main-job blocks of docs/main_job.md
render from that file.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from bayesflip.demo import run_demo
from benchmarks._meta import metadata, output_dir


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, 4 samples (results go to scratch)")
    parser.add_argument("--output", default=None, help="folder above demo/ (default: see benchmarks/_meta)")
    args = parser.parse_args(argv)
    folder = os.path.join(output_dir(parser, args), "demo")
    kwargs = {"epochs": 3, "num_samples": 4} if args.quick else {}
    meta = metadata(args)  # before the run rewrites the committed report (the tree is clean here)
    run_demo(output=folder, verbose=0, **kwargs)
    path = os.path.join(folder, "report.json")
    with open(path, encoding="utf-8") as f:
        report = {"meta": meta, **json.load(f)}
    report.pop("report_path", None)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    return report


if __name__ == "__main__":
    main()
