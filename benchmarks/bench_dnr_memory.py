"""Peak RSS of MMGCN alone and with DnR on an IEMOCAP-shaped dict pickle (issue 14's 2 GiB target).

A random dict-format pickle of IEMOCAP's shape (DATA.md) is written once; every variant then runs
in its own fresh process (one torch thread) that loads it, builds the model, runs one Divide
epoch (DnR), one Refine training epoch and one evaluation pass in batches of ``--batch``
dialogues, and reports the whole process's ``ru_maxrss``. Results go to the memory section of
``docs/benchmarks.md`` unless ``--no-write``::

    python benchmarks/bench_dnr_memory.py               # batch 64, all variants
    python benchmarks/bench_dnr_memory.py --batch 32 --json memory.json --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dnr import divide_epoch, machine_state, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MEMORY_DOCS = REPO / "docs" / "benchmarks.md"
MEMORY_START, MEMORY_END = "<!-- bench_dnr_memory:start -->", "<!-- bench_dnr_memory:end -->"

#: variants of the memory measurement (method, DnR options)
MEMORY_VARIANTS = {"none": ("none", {}), "dnr": ("dnr", {}), "dnr view_fraction=1": ("dnr", {"view_fraction": 1.0}),
                   "dnr view_fraction=1 view_chunk=1": ("dnr", {"view_fraction": 1.0, "view_chunk": 1})}
IEMOCAP_DIMS = {"text": 768, "audio": 512, "visual": 1024}  # DnR's IEMOCAP dict pickle (DATA.md)


def write_iemocap_dict_pickle(path: Path, seed: int = 0) -> Path:
    """A random dict-format pickle of IEMOCAP's shape: 120 train dialogues / 5810 utterances and
    31 test / 1623, lengths 20–110, text 768, audio 512, visual 1024, speakers M/F, 6 labels."""
    import pickle

    rng = np.random.default_rng(seed)
    lengths: list[int] = []
    for n, total in ((120, 5810), (31, 1623)):
        part = np.full(n, 20)
        part[0] = 110  # IEMOCAP's longest dialogue
        while part.sum() < total:  # spread the rest at random, at most 110 each
            i = int(rng.integers(1, n))
            part[i] += part[i] < 110
        lengths += part.tolist()
    ids = [f"Ses0{i % 5 + 1}_d{i:03d}" for i in range(len(lengths))]
    obj: dict[str, Any] = {"trainVid": ids[:120], "testVid": ids[120:], "speaker": {}, "label": {}, "sentence": {},
                           **{key: {} for key in IEMOCAP_DIMS}}
    for d, n in zip(ids, lengths):
        obj["speaker"][d] = [("M", "F")[k] for k in rng.integers(0, 2, n)]
        obj["label"][d] = rng.integers(0, 6, n).tolist()
        obj["sentence"][d] = [f"utterance {k}" for k in range(n)]
        for key, dim in IEMOCAP_DIMS.items():
            obj[key][d] = list(rng.standard_normal((n, dim), dtype=np.float32))
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def memory_worker(variant: str, pickle_path: str, batch_size: int, backbone: str = "mmgcn") -> dict[str, Any]:
    """Peak RSS of this whole process: load the pickle, build the model, a few Divide steps
    (DnR), then one training epoch (forward + loss + backward + Adam) and one evaluation pass
    over the train split in batches of ``batch_size`` dialogues."""
    import resource

    from merc.config import DataConfig, ModelConfig, resolve_model_options
    from merc.data.collate import make_loader
    from merc.data.loading import load_dataset
    from merc.registry import METHODS

    torch.set_num_threads(1)
    torch.manual_seed(0)
    method_name, extra = MEMORY_VARIANTS[variant]
    dataset = load_dataset(DataConfig(dataset=pickle_path))
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    resolved = resolve_model_options(ModelConfig(method=method_name, backbone=backbone))
    method = METHODS.create(method_name, backbone=backbone, backbone_options=resolved.backbone_options,
                            input_dims=dict(dataset.dims), num_classes=dataset.num_classes,
                            num_speakers=dataset.max_parties(), **{**resolved.method_options, **extra})
    loader = make_loader(dataset.split("train"), list(dataset.dims), batch_size, shuffle=True, seed=0)
    start, start_wall = time.process_time(), time.perf_counter()
    if method_name == "dnr":
        divide_epoch(method, loader)
        method.freeze_decomposer()
    opt = torch.optim.Adam(method.param_groups(1e-4, 1e-8))
    method.train()
    for batch in loader:
        loss, _, _ = method.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    method.eval()
    with torch.inference_mode():
        for batch in loader:
            method(batch)
    longest = max(len(d) for d in dataset.split("train"))
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_data_mb": rss_data,
            "cpu_s": time.process_time() - start, "wall_s": time.perf_counter() - start_wall,
            "batch_size": batch_size, "longest_dialogue": longest, **machine_state()}


def measure_memory(batch_size: int, workdir: Path) -> dict[str, Any]:
    """Run :func:`memory_worker` for every memory variant in its own fresh process (one at a time)."""
    import subprocess

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "iemocap_shaped.pkl"
    if not path.is_file():
        write_iemocap_dict_pickle(path)
    out = {}
    for variant in MEMORY_VARIANTS:
        proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--pickle", str(path),
                               "--batch", str(batch_size)], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode != 0:
            raise SystemExit(f"memory worker {variant} failed:\n{proc.stderr[-2000:]}")
        out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  memory {variant}: {out[variant]}", flush=True)
    return out


def render_memory(memory: dict[str, Any]) -> str:
    """The memory section of docs/benchmarks.md."""
    any_run = next(iter(memory.values()))
    lines = [MEMORY_START, "### DnR memory: MMGCN + DnR on an IEMOCAP-shaped dict pickle", "",
             f"Measured with `python benchmarks/bench_dnr_memory.py` ({time.strftime('%Y-%m-%d')}, "
             f"{platform.machine()}, torch {torch.__version__}, {any_run['threads']} thread): a random dict-format "
             "pickle of IEMOCAP's shape (120 train dialogues / 5810 utterances, of which the loader carves 12 out as dev, longest "
             f"{any_run['longest_dialogue']}; text 768, audio 512, visual 1024), batches of {any_run['batch_size']} "
             "dialogues, bundled defaults. Each row is a fresh process that loads the pickle, builds the model, runs "
             "one Divide epoch (DnR), one Refine training epoch and one evaluation pass; peak RSS "
             "(`ru_maxrss`) is that of the whole process.", "",
             "| variant | peak RSS (MiB) | RSS after loading the data (MiB) | CPU s | wall s | load (1 min) |",
             "|---|---|---|---|---|---|"]
    for name, r in memory.items():
        lines.append(f"| {name} | {r['peak_rss_mb']:.0f} | {r['rss_after_data_mb']:.0f} | {r['cpu_s']:.1f} | "
                     f"{r['wall_s']:.1f} | {r['load'][0]:.2f} |")
    return "\n".join(lines + ["", MEMORY_END]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="dialogues per batch")
    parser.add_argument("--out", default="runs/bench_dnr_memory", help="where the IEMOCAP-shaped pickle is written")
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pickle", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(memory_worker(args.worker, args.pickle, args.batch)))
        return 0
    memory = measure_memory(args.batch, Path(args.out))
    if args.json:
        Path(args.json).write_text(json.dumps(memory, indent=2))
    text = render_memory(memory)
    if not args.no_write:
        write_section(text, MEMORY_DOCS, MEMORY_START, MEMORY_END)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
