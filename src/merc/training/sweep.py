"""Seed and hyperparameter sweeps: many runs in parallel processes, resumable, one results table.

A sweep is a base experiment plus a grid (or an Optuna search space) of dotted-key values and a
list of seeds. Each (configuration, seed) pair is one run, trained by
:func:`merc.training.engine.train_run` in a worker process with ``trainer.resume`` on, into
``OUT/<configuration id>/seed_<s>/``. Re-running the same sweep therefore skips finished runs
and continues interrupted ones from their last checkpoint. The table (``OUT/sweep.md|csv|json``)
gives mean ± std over seeds per configuration. The YAML format is documented in
docs/reliability.md ("Sweeps").
"""

from __future__ import annotations

import hashlib
import itertools
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Sequence

from merc.config import ExperimentConfig, apply_overrides, deep_merge, load_yaml
from merc.errors import ConfigError, MercError

SWEEP_KEYS = ("base", "experiment", "grid", "seeds", "out", "jobs", "threads", "search", "trials", "metric",
              "direction", "params")


@dataclass
class SweepSpec:
    """A parsed sweep file.

    Attributes:
        experiment: the base experiment as a raw nested mapping.
        grid: dotted key → list of values (cartesian product; empty: the base alone).
        seeds: seeds of every configuration.
        out: output directory of the sweep.
        jobs: runs trained at the same time (worker processes).
        threads: torch threads per run.
        search: ``grid`` or ``optuna``.
        trials: Optuna trials (``search: optuna``).
        metric: ``dev.<metric>`` that Optuna optimises (mean over seeds).
        direction: ``maximize`` or ``minimize``.
        params: Optuna search space: dotted key → ``{low, high, log?, type?}`` or ``{choices}``.
    """

    experiment: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    out: str = "runs/sweep"
    jobs: int = 1
    threads: int = 1
    search: str = "grid"
    trials: int = 10
    metric: str = "dev.weighted_f1"
    direction: str = "maximize"
    params: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Point:
    """One configuration of a sweep: its id, the values set, and the resolved config."""

    id: str
    values: dict[str, Any]
    config: ExperimentConfig


@dataclass
class RunOutcome:
    """One (configuration, seed) run: its metrics, or the one-line error it failed with."""

    point: str
    seed: int
    metrics: dict[str, Any] | None
    error: str | None = None
    skipped: bool = False


def load_sweep(path: str | Path, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read and validate a sweep YAML file; ``overrides`` (``key=value``) apply to the sweep keys."""
    p = Path(path)
    raw = apply_overrides(load_yaml(p), overrides)
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(f"{p}: unknown sweep key(s) {', '.join(unknown)}; valid keys: {', '.join(SWEEP_KEYS)}")
    experiment: dict[str, Any] = {}
    if raw.get("base") is not None:
        experiment = load_yaml((p.parent / str(raw["base"])) if not Path(str(raw["base"])).is_absolute()
                               else raw["base"])
    if not isinstance(raw.get("experiment", {}), dict):
        raise ConfigError(f"{p} [experiment]: must be a mapping of sections (data, model, trainer, output)")
    experiment = deep_merge(experiment, raw.get("experiment") or {})
    base = ExperimentConfig.from_dict(experiment, source=f"{p} [experiment]")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{p} [grid]: must map dotted keys to non-empty lists, e.g. 'trainer.lr: [0.001, 0.0003]'")
    spec = SweepSpec(experiment=experiment, grid=grid, seeds=[int(s) for s in raw.get("seeds", base.trainer.seeds)],
                     out=str(raw.get("out", base.output.dir)), jobs=int(raw.get("jobs", 1)),
                     threads=int(raw.get("threads", 1)), search=str(raw.get("search", "grid")),
                     trials=int(raw.get("trials", 10)), metric=str(raw.get("metric", "dev.weighted_f1")),
                     direction=str(raw.get("direction", "maximize")), params=raw.get("params") or {})
    _check_spec(spec, p)
    return spec


def _check_spec(spec: SweepSpec, p: Path) -> None:
    if not spec.seeds:
        raise ConfigError(f"{p} [seeds]: list at least one seed")
    if spec.jobs < 1 or spec.threads < 0:
        raise ConfigError(f"{p}: jobs must be ≥ 1 and threads ≥ 0")
    if spec.search not in ("grid", "optuna"):
        raise ConfigError(f"{p} [search]: must be 'grid' or 'optuna', got '{spec.search}'")
    if spec.search == "optuna":
        if not spec.params or not isinstance(spec.params, dict):
            raise ConfigError(f"{p} [params]: search: optuna needs a search space, e.g. "
                              "'trainer.lr: {low: 1.0e-4, high: 1.0e-2, log: true}'")
        if spec.grid:
            raise ConfigError(f"{p}: use either grid (search: grid) or params (search: optuna), not both")
    if not spec.metric.startswith("dev."):
        raise ConfigError(f"{p} [metric]: hyperparameters are selected on the dev split; use dev.<metric>, "
                          f"got '{spec.metric}'")
    if spec.direction not in ("maximize", "minimize"):
        raise ConfigError(f"{p} [direction]: must be maximize or minimize")
    for values in grid_points(spec.grid):  # every configuration must be valid before anything runs
        make_point(spec, values)


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` as a list of ``{dotted key: value}``."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def make_point(spec: SweepSpec, values: dict[str, Any]) -> Point:
    """The configuration of ``spec.experiment`` with ``values`` set; its id is stable across runs."""
    raw = json.loads(json.dumps(spec.experiment))
    apply_overrides(raw, [f"{k}={json.dumps(v)}" for k, v in values.items()])
    raw.setdefault("trainer", {}).update(progress=False, resume=True, threads=spec.threads)
    config = ExperimentConfig.from_dict(raw, source=f"sweep configuration {values}")
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    readable = "_".join(f"{k.split('.')[-1]}={v}" for k, v in values.items())
    safe = "".join(c if c.isalnum() or c in "=._-" else "-" for c in readable)[:60]
    return Point(f"{safe}_{digest}" if safe else "base", values, config)


def run_dir(out: Path, point: Point, seed: int) -> Path:
    return out / point.id / f"seed_{seed}"


def run_points(points: Sequence[Point], seeds: Sequence[int], out: Path, jobs: int,
               log: Callable[[str], None] = print) -> list[RunOutcome]:
    """Train every (point, seed) run not finished yet, ``jobs`` at a time; returns all outcomes."""
    from merc.training.engine import finished_metrics

    tasks, outcomes = [], []
    for point in points:
        for seed in seeds:
            metrics = finished_metrics(run_dir(out, point, seed), point.config, seed)
            if metrics is None:
                tasks.append((point, seed))
            else:  # finished earlier: not repeated, not even loaded in a worker
                outcomes.append(_log_outcome(RunOutcome(point.id, seed, metrics, skipped=True), log))
    if jobs == 1:
        for point, seed in tasks:
            outcomes.append(_log_outcome(_run_one(point.id, point.config.to_dict(), seed,
                                                  str(run_dir(out, point, seed))), log))
        tasks = []
    if tasks:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run_one, p.id, p.config.to_dict(), s, str(run_dir(out, p, s))) for p, s in tasks]
            for future in as_completed(futures):
                outcomes.append(_log_outcome(future.result(), log))
    order = {(p.id, s): i for i, (p, s) in enumerate((p, s) for p in points for s in seeds)}
    return sorted(outcomes, key=lambda o: order[(o.point, o.seed)])


def _log_outcome(outcome: RunOutcome, log: Callable[[str], None]) -> RunOutcome:
    state = ("kept (already finished)" if outcome.skipped else "done") if outcome.error is None else \
        f"FAILED: {outcome.error}"
    log(f"[merc sweep] {outcome.point} seed {outcome.seed}: {state}")
    return outcome


_DATASETS: dict[str, Any] = {}  # per worker process: data config → loaded dataset


def _run_one(point_id: str, config_dict: dict[str, Any], seed: int, directory: str) -> RunOutcome:
    """Worker: train (or resume, or keep) one run; user errors come back as one line."""
    from merc.data.loading import load_dataset
    from merc.training.engine import train_run

    try:
        config = ExperimentConfig.from_dict(config_dict)
        key = json.dumps(config_dict["data"], sort_keys=True)
        if key not in _DATASETS:
            _DATASETS[key] = load_dataset(config.data)
        result = train_run(config, seed, _DATASETS[key], directory)
        return RunOutcome(point_id, seed, result.metrics, skipped=bool(result.extras.get("skipped")))
    except MercError as exc:
        return RunOutcome(point_id, seed, None, str(exc))
