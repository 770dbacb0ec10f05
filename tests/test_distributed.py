"""Multi-process training: 2 CPU processes (gloo) give the single-process result for the same
effective batch; the batch samplers shard global batches and evaluation splits exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import merc.data.samplers as samplers
from merc.cli import main
from merc.data.samplers import EpochShuffleSampler, ShardedBatchSampler

ARGS = ["train", "--dataset", "synthetic-small", "--epochs", "3", "--patience", "0", "--batch-size", "8",
        "--threads", "1", "--no-progress", "-o", "model.backbone_options.hidden=32",
        "-o", "model.backbone_options.dropout=0.0"]


def _batches(sampler: ShardedBatchSampler, rank: int, world: int, monkeypatch) -> list[list[int]]:
    monkeypatch.setattr(samplers, "process_rank_and_count", lambda: (rank, world))
    out = list(sampler)
    assert len(out) == len(sampler)
    return out


@pytest.mark.parametrize("n,batch,world", [(29, 8, 2), (10, 4, 3), (5, 8, 2), (9, 3, 4)])
def test_training_batches_are_slices_of_the_global_batches(n, batch, world, monkeypatch):
    base = ShardedBatchSampler(EpochShuffleSampler(n, seed=5), batch)
    single = _batches(base, 0, 1, monkeypatch)
    per_rank = [_batches(base, r, world, monkeypatch) for r in range(world)]
    assert all(len(b) == len(single) for b in per_rank), "every process takes the same number of steps"
    for step, global_batch in enumerate(single):
        union = [i for r in range(world) for i in per_rank[r][step]]
        if len(global_batch) >= world:
            assert union == global_batch
        else:  # short last batch: processes without an item of their own repeat one
            assert set(union) == set(global_batch) and all(per_rank[r][step] for r in range(world))


@pytest.mark.parametrize("n,world", [(8, 2), (7, 3), (3, 3)])
def test_evaluation_shards_cover_the_split_once_in_order(n, world, monkeypatch):
    sampler = ShardedBatchSampler(EpochShuffleSampler(n, shuffle=False), 4, pad=False)
    gathered = [i for r in range(world) for b in _batches(sampler, r, world, monkeypatch) for i in b]
    assert gathered == list(range(n))


def test_epoch_order_depends_on_seed_and_epoch_only():
    a, b = EpochShuffleSampler(20, seed=1), EpochShuffleSampler(20, seed=1)
    first = list(a)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b) != first
    a.set_epoch(0)
    assert list(a) == first and sorted(first) == list(range(20))


def test_spawn_strategies_are_refused(tmp_path, capsys):
    assert main(ARGS + ["--strategy", "ddp_spawn", "--devices", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ddp_spawn" in err and "--strategy ddp" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    """`merc train --devices 2 --strategy ddp` (Lightning re-launches the command once per extra
    process) vs. one process with the same effective batch of 8 dialogues."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK",
                                                             "MASTER_ADDR", "MASTER_PORT")}
    two = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "merc.cli", *ARGS, "--devices", "2", "--strategy", "ddp",
                           "--out", str(two)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("[merc] results:") == 1, "only the global-zero process reports and writes"
    one = tmp_path / "single"
    assert main(ARGS + ["--out", str(one)]) == 0

    m2 = json.loads((two / "seed_0" / "metrics.json").read_text())
    m1 = json.loads((one / "seed_0" / "metrics.json").read_text())
    for split in ("dev", "test"):
        assert abs(m2[split]["weighted_f1"] - m1[split]["weighted_f1"]) <= 2.0
        assert abs(m2[split]["accuracy"] - m1[split]["accuracy"]) <= 2.0
        assert np.asarray(m2[split]["confusion"]).sum() == np.asarray(m1[split]["confusion"]).sum()
    w2, w1 = load_file(str(two / "seed_0" / "model.safetensors")), load_file(str(one / "seed_0" / "model.safetensors"))
    assert all(torch.allclose(w2[k], w1[k], atol=1e-3) for k in w1)
    assert not [p for p in two.rglob(".*") if p.is_file()], "no temporary files left behind"
