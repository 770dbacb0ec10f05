"""Dev splits: the official one where it exists, otherwise a seeded share of train dialogues.

IEMOCAP (and the tuple pickles of MELD, which fold dev into train) have no official dev set;
:func:`ensure_dev_split` then moves ``round(fraction * n_train)`` (at least one) randomly chosen
train dialogues to ``dev`` with a ``numpy`` generator seeded by ``seed``, and records
``dev_from``, ``dev_fraction`` and ``dev_seed`` in ``dataset.meta`` so results can say how
they were selected.
"""

from __future__ import annotations

import numpy as np

from merc.data.schema import DialogueDataset
from merc.errors import DataError


def ensure_dev_split(dataset: DialogueDataset, fraction: float = 0.1, seed: int = 0) -> DialogueDataset:
    """``dataset`` with a dev split (a new object when one had to be carved; else the same one).

    Args:
        dataset: a dataset with at least a ``train`` split.
        fraction: share of train dialogues moved to dev when no dev split exists.
        seed: seed of the shuffle choosing them.
    """
    if dataset.splits.get("dev"):
        dataset.meta.setdefault("dev_from", "official")
        return dataset
    source = dataset.source or dataset.name
    if not 0.0 < fraction < 1.0:
        raise DataError(source, f"dev fraction {fraction} is outside (0, 1)", field="dev_fraction",
                        fix="use e.g. data.dev_fraction=0.1")
    train = list(dataset.splits.get("train", []))
    if len(train) < 2:
        raise DataError(source, f"needs at least 2 train dialogues to carve a dev split, has {len(train)}",
                        field="splits", fix="add a 'dev' split to the data or more train dialogues")
    n_dev = min(len(train) - 1, max(1, int(round(fraction * len(train)))))
    order = np.random.default_rng(seed).permutation(len(train))
    dev_set = {train[i] for i in order[:n_dev]}
    splits = {name: list(ids) for name, ids in dataset.splits.items() if name != "dev"}
    splits["train"] = [i for i in train if i not in dev_set]
    splits["dev"] = [i for i in train if i in dev_set]
    ordered = {name: splits[name] for name in ("train", "dev", "test") if name in splits}
    ordered.update({k: v for k, v in splits.items() if k not in ordered})
    meta = {**dataset.meta, "dev_from": "train", "dev_fraction": float(fraction), "dev_seed": int(seed)}
    return DialogueDataset(dataset.name, dataset.dialogues, list(dataset.label_names), ordered, dataset.source, meta)
