"""``merc sweep CONFIG``: seed/hyperparameter sweeps in parallel processes, resumable, one table."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _run(args: argparse.Namespace) -> int:
    from merc.errors import MercError
    from merc.training.sweep import grid_points, load_sweep, make_point
    from merc.training.sweep_search import run_sweep

    overrides = list(args.overrides)
    for flag, key in ((args.jobs, "jobs"), (args.out, "out"), (args.threads, "threads")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    spec = load_sweep(args.config, overrides)
    if args.dry_run:
        for values in grid_points(spec.grid) if spec.search == "grid" else []:
            point = make_point(spec, values)
            print(f"{point.id}: {values} × seeds {spec.seeds}")
        if spec.search == "optuna":
            print(f"optuna: {spec.trials} trials over {sorted(spec.params)} × seeds {spec.seeds}, "
                  f"{spec.direction} {spec.metric}")
        return 0
    result = run_sweep(spec)
    print()
    print(result.files["md"].read_text(encoding="utf-8"))
    print(f"[merc sweep] table: {result.files['md']}, {result.files['csv']}, {result.files['json']}")
    if result.failures:
        first = result.failures[0]
        raise MercError(f"{len(result.failures)} of {len(result.outcomes)} run(s) failed (first: {first.point} seed "
                        f"{first.seed}: {first.error}); fix and rerun the same command, finished runs are kept")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "sweep", "run seed/hyperparameter sweeps in parallel processes (resumable)", _run,
                    description="Train every configuration of a sweep file (grid or Optuna search) over its "
                                "seeds, several runs at a time. Re-running the same command skips finished runs "
                                "and resumes interrupted ones. Writes sweep.md/csv/json with mean ± std per "
                                "configuration. File format: docs/reliability.md#sweeps.")
    p.add_argument("config", metavar="CONFIG", help="sweep YAML file")
    p.add_argument("--jobs", type=int, help="runs trained at the same time (worker processes)")
    p.add_argument("--threads", type=int, help="torch threads per run")
    p.add_argument("--out", metavar="DIR", help="output directory of the sweep")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="list the configurations and exit")
    p.add_argument("-o", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a sweep key, e.g. -o experiment.trainer.max_epochs=5 (repeatable)")
