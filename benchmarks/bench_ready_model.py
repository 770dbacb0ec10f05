"""How the ready model ``meld-text`` does on new conversations written for this check.

One command::

    python benchmarks/bench_ready_model.py [--data-path ../shared/data/meld]

``benchmarks/data/heldout_conversations.csv`` holds 10 short conversations (40 utterances)
written for this benchmark — not taken from any dataset — each utterance with the MELD-7
emotion a reader would expect. The script predicts them with the bundled model (no training)
and prints the agreement overall and per expected class, every utterance's prediction, and,
with ``--data-path``, the agreement of a no-context baseline on the same frozen MiniLM
features (logistic regression fitted on MELD train). Reports wall and CPU time, threads and
load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().parent / "data" / "heldout_conversations.csv"


def baseline_predictions(data_path: str, texts: list[str]) -> list[str]:
    """Logistic regression on frozen MiniLM vectors of MELD train (no dialogue context)."""
    from sklearn.linear_model import LogisticRegression

    from merc.data.loading import open_dataset
    from merc.features import FeatureCache, build_extractors, extract_features

    extractor = build_extractors({"t": "minilm"})
    meld = extract_features(open_dataset("meld", path=data_path), extractor, FeatureCache(progress=False), progress=False)
    train = meld.split("train")
    x = np.concatenate([d.features["t"] for d in train])
    y = np.concatenate([d.labels for d in train])
    clf = LogisticRegression(max_iter=3000).fit(x, y)
    pred = clf.predict(np.stack(extractor["t"].extract(texts)))
    return [meld.label_names[int(k)] for k in pred]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="meld-text")
    parser.add_argument("--data-path", dest="data_path", help="MELD transcripts, for the no-context baseline")
    args = parser.parse_args()
    import torch

    from merc.inference import Predictor

    torch.set_num_threads(1)
    load, wall, cpu = os.getloadavg(), time.perf_counter(), time.process_time()
    predictor = Predictor.from_pretrained(args.model)
    rows = predictor.predict(TABLE)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    expected = [r["true_label"] for r in rows]
    predicted = [r["label"] for r in rows]
    hits = [e == p for e, p in zip(expected, predicted)]
    print(f"model {args.model}: {sum(hits)}/{len(hits)} utterances agree ({100 * np.mean(hits):.1f}%); "
          f"load + predict {wall:.1f} s wall, {cpu:.1f} s CPU, {torch.get_num_threads()} thread, load average "
          f"{load[0]:.2f} ({platform.machine()}, {os.cpu_count()} cores)")
    support = Counter(expected)
    print("| expected | n | agree |\n|---|---|---|")
    for label in predictor.label_names:
        if support[label]:
            n_ok = sum(h for h, e in zip(hits, expected) if e == label)
            print(f"| {label} | {support[label]} | {n_ok} |")
    base = baseline_predictions(args.data_path, [r["text"] for r in rows]) if args.data_path else None
    if base is not None:
        agree = np.mean([e == b for e, b in zip(expected, base)])
        print(f"no-context logistic regression (same MiniLM features, MELD train): "
              f"{sum(e == b for e, b in zip(expected, base))}/{len(base)} ({100 * agree:.1f}%)")
    print("\n| dialogue | speaker | text | expected | predicted | p |" + (" baseline |" if base else ""))
    print("|---|---|---|---|---|---|" + ("---|" if base else ""))
    for i, r in enumerate(rows):
        mark = "" if hits[i] else " ✗"
        print(f"| {r['dialogue_id']} | {r['speaker']} | {r['text']} | {r['true_label']} | {r['label']}{mark} | "
              f"{r['confidence']:.2f} |" + (f" {base[i]} |" if base else ""))


if __name__ == "__main__":
    main()
