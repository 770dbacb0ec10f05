"""Where does a trained DnR model keep each kind of planted evidence? (synthetic data only)

For every planted interaction type (unique, redundant, synergy) on the test split of a synthetic
dataset: the cross-validated linear-probe accuracy of the gold label from each component, and
the mean prediction sensitivity (KL) of each component and of each kind removed from every
modality at once. A decomposition that separates the kinds shows redundant evidence decodable
mainly from the r parts and the backbone sensitive to them; see docs/results_synthetic.md.

Run: ``python benchmarks/diagnose_dnr_components.py MODEL_DIR [--dataset synthetic-iemocap]``
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    p.add_argument("model_dir", help="a DnR model directory written by merc train --method dnr")
    p.add_argument("--dataset", default="synthetic-iemocap", help="a synthetic preset (it records the planted types)")
    p.add_argument("--split", default="test")
    args = p.parse_args(argv)

    from merc.config import DataConfig
    from merc.data.collate import make_loader
    from merc.data.loading import load_dataset
    from merc.explain import collect_explanations
    from merc.explain.components import probe_accuracy
    from merc.training.model_dir import load_model_dir

    dataset = load_dataset(DataConfig(dataset=args.dataset))
    bundle = load_model_dir(args.model_dir)
    ex = collect_explanations(bundle.method, make_loader(dataset.split(args.split), list(bundle.modalities), 16,
                                                         shuffle=False))
    per, names = ex["per_utterance"], ex["info"]["component_names"]
    if "meta:interaction" not in per or "kind_kl" not in per:
        raise SystemExit(f"{args.dataset}: no planted interaction types, or {args.model_dir} is not a DnR model")
    inter, labels, comps = per["meta:interaction"], per["label"], per["components"]
    chance = 100 / len(bundle.label_names)
    print(f"{args.model_dir} on {args.dataset} ({args.split}); probe chance ≈ {chance:.0f}% (uniform)")
    print("| planted | n | " + " | ".join(names) + " | KL: " + " | KL: ".join(names) + " | kind-wide KL U / R / S |")
    print("|---|---:|" + "---:|" * (2 * len(names) + 1))
    for kind, code in (("unique", 0), ("redundant", 1), ("synergy", 2)):
        sel = inter == code
        if sel.sum() < 10:
            continue
        probes = [f"{100 * probe_accuracy(comps[sel][:, k], labels[sel]):.0f}%" for k in range(len(names))]
        kls = [f"{v:.3f}" for v in per["kl"][sel].mean(0)]
        kind_kl = " / ".join(f"{v:.3f}" for v in per["kind_kl"][sel].mean(0))
        print(f"| {kind} | {int(sel.sum())} | " + " | ".join(probes) + " | " + " | ".join(kls) + f" | {kind_kl} |")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
