"""Driving a sweep: grid or Optuna search over configurations, and the mean ± std table.

``search: grid`` trains every grid point × seed. ``search: optuna`` asks an Optuna study
(stored in ``OUT/optuna.db``, so an interrupted search continues) for ``jobs`` configurations
at a time, trains their seeds in parallel and reports the mean dev metric back.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from merc.config import save_yaml
from merc.errors import ConfigError, MercError
from merc.evaluation.report import SUMMARY_METRICS, aggregate, pm
from merc.io_utils import atomic_write_json, atomic_write_text
from merc.training.sweep import Point, RunOutcome, SweepSpec, grid_points, make_point, run_points


@dataclass
class SweepResult:
    """A finished sweep: one row per configuration, the outcomes, and the files written."""

    rows: list[dict[str, Any]]
    outcomes: list[RunOutcome]
    files: dict[str, Path]

    @property
    def failures(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def run_sweep(spec: SweepSpec, log: Callable[[str], None] = print) -> SweepResult:
    """Run (or continue) the sweep ``spec`` and write ``sweep.md``, ``sweep.csv``, ``sweep.json``."""
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    save_yaml({"experiment": spec.experiment, "grid": spec.grid, "seeds": spec.seeds, "search": spec.search,
               "params": spec.params, "metric": spec.metric, "direction": spec.direction}, out / "sweep.yaml")
    if spec.search == "optuna":
        points, outcomes = _optuna(spec, out, log)
    else:
        points = [make_point(spec, values) for values in grid_points(spec.grid)]
        log(f"[merc sweep] {len(points)} configuration(s) × {len(spec.seeds)} seed(s), {spec.jobs} at a time")
        outcomes = run_points(points, spec.seeds, out, spec.jobs, log)
    rows = table_rows(points, outcomes)
    files = write_table(out, rows, spec)
    return SweepResult(rows, outcomes, files)


def table_rows(points: list[Point], outcomes: list[RunOutcome]) -> list[dict[str, Any]]:
    """One row per configuration: its values and mean ± std over its finished seeds."""
    rows = []
    for point in points:
        done = [o.metrics for o in outcomes if o.point == point.id and o.metrics is not None]
        failed = [o.seed for o in outcomes if o.point == point.id and o.error is not None]
        row: dict[str, Any] = {"id": point.id, "values": point.values, "n_seeds": len(done), "failed_seeds": failed}
        for split in ("dev", "test"):
            if done and all(split in m for m in done):
                label_names = list(done[0][split]["per_class_f1"])
                row[split] = aggregate([m[split] for m in done], label_names)
        rows.append(row)
    return rows


def write_table(out: Path, rows: list[dict[str, Any]], spec: SweepSpec) -> dict[str, Path]:
    """Write the sweep table as Markdown, CSV (long format) and JSON, atomically."""
    keys = list(spec.grid or spec.params)
    lines = [f"# Sweep: {spec.search}, {len(rows)} configuration(s), seeds {' '.join(map(str, spec.seeds))}", "",
             "Mean ± std over seeds; configurations are chosen on dev, test is reported for information.", "",
             "| configuration | " + " | ".join(keys) + " | seeds | " +
             " | ".join(f"{s} {m.replace('_', ' ')}" for s in ("dev", "test") for m in SUMMARY_METRICS) + " |",
             "|" + "---|" * (len(keys) + 2 + 2 * len(SUMMARY_METRICS))]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["configuration", *keys, "n_seeds", "split", "metric", "mean", "std"])
    for row in rows:
        values = [str(row["values"].get(k, "")) for k in keys]
        cells = [pm(row[s][m]) if s in row else "–" for s in ("dev", "test") for m in SUMMARY_METRICS]
        seeds = f"{row['n_seeds']}" + (f" ({len(row['failed_seeds'])} failed)" if row["failed_seeds"] else "")
        lines.append(f"| {row['id']} | " + " | ".join(values) + f" | {seeds} | " + " | ".join(cells) + " |")
        for split in ("dev", "test"):
            for metric in SUMMARY_METRICS if split in row else ():
                writer.writerow([row["id"], *values, row["n_seeds"], split, metric,
                                 f"{row[split][metric]['mean']:.4f}", f"{row[split][metric]['std']:.4f}"])
    best = best_row(rows, spec)
    if best is not None:
        lines += ["", f"Best on {spec.metric} ({spec.direction}): **{best['id']}** {best['values']}"]
    paths = {"md": out / "sweep.md", "csv": out / "sweep.csv", "json": out / "sweep.json"}
    atomic_write_text(paths["md"], "\n".join(lines) + "\n")
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_json(paths["json"], {"search": spec.search, "metric": spec.metric, "direction": spec.direction,
                                      "seeds": spec.seeds, "rows": rows, "best": best["id"] if best else None})
    from merc.tables import TableDoc, write_data_dictionary

    write_data_dictionary(out, [TableDoc("sweep.csv", "one metric of one split of one configuration", {
        "configuration": "configuration id", **{k: "value of this swept parameter" for k in keys},
        "n_seeds": "seeds that finished", "split": "dev or test", "metric": "weighted_f1, accuracy or macro_f1 (%)",
        "mean": "mean over seeds", "std": "standard deviation over seeds"})], "Sweep: data dictionary")
    return paths


def best_row(rows: list[dict[str, Any]], spec: SweepSpec) -> dict[str, Any] | None:
    """The configuration with the best mean ``spec.metric`` (``dev.<metric>``)."""
    split, metric = spec.metric.split(".", 1)
    scored = [r for r in rows if split in r and metric in r[split]]
    if not scored:
        return None
    sign = 1.0 if spec.direction == "maximize" else -1.0
    return max(scored, key=lambda r: sign * r[split][metric]["mean"])


def _optuna(spec: SweepSpec, out: Path, log: Callable[[str], None]) -> tuple[list[Point], list[RunOutcome]]:
    try:
        import optuna
    except ImportError:
        raise ConfigError("search: optuna needs the optuna package; pip install 'merc[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{(out / 'optuna.db').resolve()}"
    direction = spec.direction
    study = optuna.create_study(study_name="merc-sweep", storage=storage, load_if_exists=True, direction=direction)
    # reproducible, yet a continued study does not replay the samples of its first session
    study.sampler = optuna.samplers.TPESampler(seed=spec.seeds[0] + len(study.get_trials(deepcopy=False)))
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)  # interrupted: its runs resume below
    split, metric = spec.metric.split(".", 1)
    points: dict[str, Point] = {}
    outcomes: dict[tuple[str, int], RunOutcome] = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        points.setdefault(make_point(spec, dict(trial.params)).id, make_point(spec, dict(trial.params)))
    while (done := len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))) < spec.trials:
        trials = [study.ask() for _ in range(min(spec.jobs, spec.trials - done))]
        batch = [make_point(spec, {k: _suggest(t, k, v) for k, v in spec.params.items()}) for t in trials]
        log(f"[merc sweep] optuna trials {[t.number for t in trials]} of {spec.trials}")
        results = run_points(batch, spec.seeds, out, spec.jobs, log)
        for trial, point in zip(trials, batch):
            points[point.id] = point
            mine = [o for o in results if o.point == point.id]
            outcomes.update({(o.point, o.seed): o for o in mine})
            scores = [o.metrics[split][metric] for o in mine if o.metrics is not None]
            if len(scores) == len(spec.seeds):
                study.tell(trial, sum(scores) / len(scores))
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if not scores and all(o.error for o in mine):
                    raise MercError(f"optuna trial {trial.number} failed: {mine[0].error}")
    missing = [p for p in points.values() if not any(k[0] == p.id for k in outcomes)]
    for outcome in run_points(missing, spec.seeds, out, spec.jobs, lambda _: None):  # finished: read back
        outcomes[(outcome.point, outcome.seed)] = outcome
    return list(points.values()), list(outcomes.values())


def _suggest(trial: Any, key: str, space: dict[str, Any]) -> Any:
    """Sample ``key`` from ``space``: ``{choices: [...]}`` or ``{low, high, log?, type?: int|float}``."""
    if not isinstance(space, dict):
        raise ConfigError(f"sweep params [{key}]: must be a mapping with choices or low/high")
    if "choices" in space:
        return trial.suggest_categorical(key, list(space["choices"]))
    if "low" not in space or "high" not in space:
        raise ConfigError(f"sweep params [{key}]: give choices: [...] or low: and high:")
    if space.get("type") == "int" or (isinstance(space["low"], int) and isinstance(space["high"], int)
                                      and space.get("type") != "float"):
        return trial.suggest_int(key, int(space["low"]), int(space["high"]), log=bool(space.get("log", False)))
    return trial.suggest_float(key, float(space["low"]), float(space["high"]), log=bool(space.get("log", False)))
