"""Ceilings and PID of the synthetic presets' planted evidence (docs/synthetic.md).

For every preset and data seed, on the test split (classifiers fit on the train split):

1. **Oracle ceilings** — how well the planted kind (U/R/S, over the utterances that carry
   evidence) and the carrier of unique evidence can be recovered by
   - the generator's own rule (:mod:`merc.data.synthetic.oracle`: matched filters with the true
     embeddings and prototypes),
   - a classifier on all raw features ``[x_t; x_a; x_v]`` (standardised logistic regression, and
     an MLP with one hidden layer of 256),
   - a linear probe on ``x_t`` alone for utterances whose text carries evidence (what a
     per-modality decomposer could see), next to its majority answer.
2. **PID** — the BROJA/CVX decomposition (:mod:`merc.explain.pid`) of every modality pair about
   the label, on two discretisations: the rule's per-modality reading (symbol = block and key,
   or "nothing"; the ideal discretisation) and unsupervised k-means (PCA 16, 12 clusters), as
   shares of R/U1/U2/S next to the planted shares for that pair (redundant; unique in m1; unique
   in m2; synergy pair exactly {m1, m2}) and next to the same estimator run *within* each
   planted group (kind × carriers) and summed with the groups' weights — the mixture resolved.

::

    python benchmarks/bench_synthetic_truth.py                 # all presets, seeds 0 1 2 (~10 min)
    python benchmarks/bench_synthetic_truth.py --presets synthetic-small --seeds 0 --no-write

Writes the "ceilings" and "PID" sections of docs/synthetic.md (between the bench markers).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "synthetic.md"
START, END = "<!-- bench_synthetic_truth:start -->", "<!-- bench_synthetic_truth:end -->"
PAIRS = (("t", "a"), ("t", "v"), ("a", "v"))
BITS = {"t": 1, "a": 2, "v": 4}


def flatten(dataset, split):  # type: ignore[no-untyped-def]
    dialogues = dataset.split(split)
    out = {k: np.concatenate([d.meta[k] for d in dialogues]) for k in ("interaction", "evidence_modality", "evidence_mask")}
    out["x"] = {m: np.concatenate([d.features[m] for d in dialogues]) for m in "tav"}
    out["y"] = np.concatenate([d.labels for d in dialogues])
    return out


def fit_score(model, x_train, y_train, x_test, y_test):  # type: ignore[no-untyped-def]
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    return float((model.predict(x_test) == y_test).mean())


def ceilings(config, planting, train, test) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from merc.data.synthetic.oracle import rule_kinds

    evid = test["interaction"] < 3
    kind, carrier = rule_kinds(config, planting, test["x"])
    uniq = test["interaction"] == 0
    out = {"majority": float(np.bincount(test["interaction"][evid]).max() / evid.sum()),
           "rule_kind": float((kind[evid] == test["interaction"][evid]).mean()),
           "rule_carrier": float((carrier[uniq] == test["evidence_modality"][uniq]).mean())}
    cat = {s: np.concatenate([d["x"][m] for m in "tav"], 1) for s, d in (("train", train), ("test", test))}
    models = {"linear": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
              "mlp": lambda: make_pipeline(StandardScaler(), MLPClassifier((256,), max_iter=200, early_stopping=True,
                                                                           random_state=0))}
    tr_evid, tr_uniq = train["interaction"] < 3, train["interaction"] == 0
    for name, make in models.items():
        out[f"{name}_kind"] = fit_score(make(), cat["train"][tr_evid], train["interaction"][tr_evid],
                                        cat["test"][evid], test["interaction"][evid])
        out[f"{name}_carrier"] = fit_score(make(), cat["train"][tr_uniq], train["evidence_modality"][tr_uniq],
                                           cat["test"][uniq], test["evidence_modality"][uniq])
    tr_t, te_t = (train["evidence_mask"] & 1) > 0, (test["evidence_mask"] & 1) > 0
    out["text_only_kind"] = fit_score(models["linear"](), train["x"]["t"][tr_t], train["interaction"][tr_t],
                                      test["x"]["t"][te_t], test["interaction"][te_t])
    out["text_only_majority"] = float(np.bincount(test["interaction"][te_t]).max() / te_t.sum())
    return out


def rule_symbols(config, planting, x) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Per modality: ``block·C + key`` of the most likely planted prototype, or ``blocks·C`` (nothing)."""
    from merc.data.synthetic.oracle import block_evidence

    C = config.num_classes
    kinds = "URS" if config.planting == "subspace" else "U"
    read = [block_evidence(config, planting, x, k) for k in kinds]
    llr = np.stack([r[0] for r in read], 2)  # (N, 3, blocks)
    keys = np.stack([r[1] for r in read], 2)
    best = llr.argmax(2)
    key = np.take_along_axis(keys, best[..., None], 2)[..., 0]
    sym = np.where(llr.max(2) > 0, best * C + key, len(kinds) * C)
    return {m: sym[:, i] for i, m in enumerate("tav")}


def planted_shares(data, m1: str, m2: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    it, mask = data["interaction"], data["evidence_mask"]
    raw = {"R": float((it == 1).mean()), "U1": float(((it == 0) & (mask == BITS[m1])).mean()),
           "U2": float(((it == 0) & (mask == BITS[m2])).mean()),
           "S": float(((it == 2) & (mask == BITS[m1] + BITS[m2])).mean())}
    total = sum(raw.values())
    return {k: v / total for k, v in raw.items()}


def pid_rows(config, planting, data) -> list[dict]:  # type: ignore[no-untyped-def]
    from merc.explain.pid import discretise_kmeans, joint_distribution, pid

    symbols = {"rule": rule_symbols(config, planting, data["x"]),
               "kmeans": {m: discretise_kmeans(data["x"][m], 12) for m in "tav"}}
    group = data["interaction"] * 8 + data["evidence_mask"]  # planted kind × carriers
    rows = []
    for m1, m2 in PAIRS:
        row = {"pair": f"{m1},{m2}", "planted": planted_shares(data, m1, m2)}
        for name, sym in symbols.items():
            result = pid(joint_distribution(sym[m1], sym[m2], data["y"]))
            row[name] = {"shares": result.shares(), "total": result.total}
        # the same estimator within each planted group, weighted by the group's share: the mixture resolved
        atoms = np.zeros(4)
        for g in np.unique(group):
            rows_g = group == g
            r = pid(joint_distribution(symbols["rule"][m1][rows_g], symbols["rule"][m2][rows_g], data["y"][rows_g]))
            atoms += rows_g.mean() * np.array([r.redundancy, r.unique1, r.unique2, r.synergy])
        atoms = np.maximum(atoms, 0)
        row["grouped"] = {"shares": dict(zip(("R", "U1", "U2", "S"), atoms / atoms.sum())), "total": float(atoms.sum())}
        rows.append(row)
    return rows


def mean_std(values: list[float]) -> str:
    a = 100 * np.asarray(values)
    return f"{a.mean():.1f} ± {a.std():.1f}" if len(a) > 1 else f"{a.mean():.1f}"


def shares_text(shares: list[dict[str, float]]) -> str:
    return " / ".join(f"{np.mean([s[k] for s in shares]):.2f}" for k in ("R", "U1", "U2", "S"))


def main() -> int:
    import merc.data.synthetic  # noqa: F401
    from merc.data.synthetic import PRESETS, generate_with_planting

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/synthetic.md alone")
    args = parser.parse_args()
    wall, cpu = time.perf_counter(), time.process_time()
    ceiling_rows, pid_tables = [], []
    for name in args.presets:
        config = PRESETS[name]
        per_seed, pids = [], []
        for seed in args.seeds:
            dataset, planting = generate_with_planting(config, seed)
            train, test = flatten(dataset, "train"), flatten(dataset, "test")
            per_seed.append(ceilings(config, planting, train, test))
            everything = {k: np.concatenate([train[k], test[k]]) for k in ("interaction", "evidence_mask", "y")}
            everything["x"] = {m: np.concatenate([train["x"][m], test["x"][m]]) for m in "tav"}
            pids.append(pid_rows(config, planting, everything))
            print(name, seed, {k: round(v, 3) for k, v in per_seed[-1].items()}, flush=True)
        keys = per_seed[0].keys()
        ceiling_rows.append((name, config.planting, {k: mean_std([s[k] for s in per_seed]) for k in keys}))
        for i, (m1, m2) in enumerate(PAIRS):
            pid_tables.append((name, f"{m1},{m2}", shares_text([p[i]["planted"] for p in pids]),
                               shares_text([p[i]["grouped"]["shares"] for p in pids]),
                               np.mean([p[i]["grouped"]["total"] for p in pids]),
                               shares_text([p[i]["rule"]["shares"] for p in pids]),
                               np.mean([p[i]["rule"]["total"] for p in pids]),
                               shares_text([p[i]["kmeans"]["shares"] for p in pids]),
                               np.mean([p[i]["kmeans"]["total"] for p in pids])))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load = os.getloadavg()
    lines = [START, "", f"Measured with `python benchmarks/bench_synthetic_truth.py --seeds {' '.join(map(str, args.seeds))}` "
             f"(data seeds; mean ± std over them; {platform.processor() or platform.machine()}, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {wall:.0f} s wall, {cpu:.0f} s CPU, "
             f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}). Accuracy in % on the test split.",
             "", "| preset | planting | majority kind | rule: kind | rule: carrier | linear [x_t;x_a;x_v]: kind / carrier "
             "| MLP: kind / carrier | x_t alone: kind (majority) |", "|---|---|---|---|---|---|---|---|"]
    for name, planting, r in ceiling_rows:
        lines.append(f"| `{name}` | {planting} | {r['majority']} | {r['rule_kind']} | {r['rule_carrier']} | "
                     f"{r['linear_kind']} / {r['linear_carrier']} | {r['mlp_kind']} / {r['mlp_carrier']} | "
                     f"{r['text_only_kind']} ({r['text_only_majority']}) |")
    lines += ["", "PID shares R / U1 / U2 / S (of their sum) per modality pair, all utterances of all splits; "
              "`I` = I(X1, X2; Y) in bits:", "",
              "| preset | pair | planted shares | PID within planted groups (rule's reading) | Σ bits "
              "| PID, whole dataset (rule's reading) | I | PID, whole dataset (k-means, 12) | I |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, pair, planted, grouped, grouped_i, rule, rule_i, km, km_i in pid_tables:
        lines.append(f"| `{name}` | {pair} | {planted} | {grouped} | {grouped_i:.2f} | {rule} | {rule_i:.2f} | "
                     f"{km} | {km_i:.2f} |")
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = DOCS.read_text()
        if START in doc:
            doc = doc[:doc.index(START)] + text + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip("\n") + "\n\n" + text + "\n"
        DOCS.write_text(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
