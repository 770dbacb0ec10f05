"""Speed, throughput, memory and length-scaling benchmark of every registered backbone.

For each backbone (bundled default hyperparameters) on the ``synthetic-iemocap`` train split
(120 dialogues / 5810 utterances, dims t 1024 / a 1582 / v 342, 6 classes), batches of 16
dialogues:

- training-epoch time: forward + cross-entropy + backward + Adam step over the whole split
  (batches collated beforehand, so the time is the model's);
- inference throughput: utterances/s in eval mode under ``torch.inference_mode``, on the same
  batches of 16 dialogues in data order, and on length-sorted batches of 32 dialogues (what
  :func:`merc.evaluation.predict.predict_dialogues` does), at every ``--inference-threads``
  count (default 1 and 2);
- peak memory: peak RSS of a fresh worker process that runs only that backbone (and the
  same process's RSS just before the model was built, to separate data from model);
- scaling: one training epoch over ~6000 utterances made of dialogues of 10, 100, 300 and
  1000 utterances.

Every timing is reported as CPU time (``time.process_time``) and wall time, with the thread
count and the load average before/after each worker. Each backbone runs in its own subprocess
(clean peak RSS); with ``--rounds R`` the workers run R times interleaved (backbone order
repeated), so a slow phase of a shared machine hits every backbone, and the best CPU time is
kept. MMGCN's inference throughput is also measured wrapped in DnR (decomposer + backbone). Results are printed and written
to the backbone section of ``docs/benchmarks.md``::

    python benchmarks/bench_backbones.py                 # all backbones, writes docs
    python benchmarks/bench_backbones.py --backbones mmgcn --no-write
    python benchmarks/bench_backbones.py --rounds 2    # interleaved repeats
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench_backbones:start -->", "<!-- bench_backbones:end -->"
DIMS = {"t": 1024, "a": 1582, "v": 342}
LENGTHS = (10, 100, 300, 1000)
SCALING_UTTERANCES = 6000
LAST_CPU = [0.0]  # CPU seconds of the last timed loop (robust to other processes on a shared machine)
DNR_BACKBONES = ("mmgcn",)  # backbones whose DnR-wrapped inference throughput is also reported


def train_dialogues() -> tuple[list, str]:
    """The synthetic-iemocap train split, or random data of the same shape if unavailable."""
    try:
        from merc.data.synthetic import build_preset

        dataset = build_preset("synthetic-iemocap", seed=0)
        return dataset.split("train"), "synthetic-iemocap (seed 0)"
    except ImportError:
        rng = np.random.default_rng(0)
        lengths = rng.multinomial(5810 - 120 * 12, np.full(120, 1 / 120)) + 12
        return random_dialogues(lengths.tolist(), rng), "random data of synthetic-iemocap's shape"


def random_dialogues(lengths: list[int], rng: np.random.Generator) -> list:
    from merc.data.schema import Dialogue

    out = []
    for i, n in enumerate(lengths):
        feats = {m: rng.standard_normal((n, d), dtype=np.float32) for m, d in DIMS.items()}
        speakers = [("M", "F")[k] for k in rng.integers(0, 2, n)]
        out.append(Dialogue(id=f"d{i}", speakers=speakers, features=feats,
                            labels=rng.integers(0, 6, n).astype(np.int64)))
    return out


def batches(dialogues: list, batch_size: int = 16) -> list:
    from merc.data.collate import collate_dialogues

    return [collate_dialogues(dialogues[i:i + batch_size], list(DIMS)) for i in range(0, len(dialogues), batch_size)]


def build(name: str) -> torch.nn.Module:
    from merc.config import bundled_defaults
    from merc.registry import BACKBONES

    return BACKBONES.create(name, input_dims=dict(DIMS), num_classes=6, num_speakers=2,
                            **bundled_defaults("backbones", name))


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: list) -> float:
    """Wall-clock seconds of one training epoch over ``data`` (CPU seconds in ``LAST_CPU``)."""
    model.train()
    start, cpu = time.perf_counter(), time.process_time()
    for batch in data:
        optimizer.zero_grad(set_to_none=True)
        out = model(batch.features, batch.mask, batch.speakers)
        loss = torch.nn.functional.cross_entropy(out.logits, batch.labels_flat, ignore_index=-1)
        loss.backward()
        optimizer.step()
    LAST_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - start


def inference(model: torch.nn.Module, data: list) -> float:
    """Wall-clock seconds of one eval-mode pass over ``data`` (CPU seconds in ``LAST_CPU``)."""
    model.eval()
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for batch in data:
            model(batch.features, batch.mask, batch.speakers)
    LAST_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - start


def throughput(model: torch.nn.Module, data: list, n_utt: int, repeats: int = 3) -> dict:
    """Best-of-``repeats`` inference throughput (utterances/s) by wall clock and by CPU time."""
    inference(model, data[:1])  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        walls.append(inference(model, data))
        cpus.append(LAST_CPU[0])
    return {"wall": n_utt / min(walls), "cpu": n_utt / min(cpus)}


def build_dnr(name: str) -> torch.nn.Module:
    """DnR (bundled defaults) around backbone ``name``, decomposer frozen (random weights)."""
    from merc.config import bundled_defaults
    from merc.registry import METHODS

    method = METHODS.create("dnr", input_dims=dict(DIMS), num_classes=6, num_speakers=2, backbone=name,
                            backbone_options=bundled_defaults("backbones", name), **bundled_defaults("methods", "dnr"))
    method.freeze_decomposer()
    return method


def method_throughput(method: torch.nn.Module, data: list, n_utt: int, repeats: int = 3) -> dict:
    """Like :func:`throughput` for a method (``method(batch)``: decomposer + backbone for DnR)."""
    method.eval()

    def one_pass() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for batch in data:
                method(batch)
        return time.perf_counter() - start, time.process_time() - cpu

    one_pass()  # warm-up
    walls, cpus = zip(*(one_pass() for _ in range(repeats)))
    return {"wall": n_utt / min(walls), "cpu": n_utt / min(cpus)}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(name: str, epochs: int, lengths: tuple[int, ...], threads: int, inference_threads: tuple[int, ...]) -> dict:
    """Measure one backbone (run in a fresh process)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dialogues, source = train_dialogues()
    data = batches(dialogues)
    n_utt = sum(b.num_utterances for b in data)
    rss_before = rss_mb()
    model = build(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(model, optimizer, data[:1])  # warm-up (allocator, lazy init)
    epoch_times, epoch_cpu = [], []
    for _ in range(epochs):
        epoch_times.append(train_epoch(model, optimizer, data))
        epoch_cpu.append(LAST_CPU[0])
    sorted_data = batches(sorted(dialogues, key=len), 32)  # as predict_dialogues batches
    infer = {}
    for t in inference_threads:
        torch.set_num_threads(t)
        infer[str(t)] = {"batches16": throughput(model, data, n_utt), "sorted32": throughput(model, sorted_data, n_utt)}
    infer_dnr = {}
    if name in DNR_BACKBONES:  # the same backbone wrapped by DnR (frozen random decomposer: cost only)
        dnr = build_dnr(name)
        for t in inference_threads:
            torch.set_num_threads(t)
            infer_dnr[str(t)] = {"batches16": method_throughput(dnr, data, n_utt),
                                 "sorted32": method_throughput(dnr, sorted_data, n_utt)}
        del dnr
    torch.set_num_threads(threads)
    peak_split = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scaling = {}
    rng = np.random.default_rng(1)
    for length in lengths:
        count = max(1, SCALING_UTTERANCES // length)
        scaled = batches(random_dialogues([length] * count, rng))
        wall = train_epoch(model, optimizer, scaled)
        scaling[str(length)] = {"wall": wall, "cpu": LAST_CPU[0]}
        del scaled
    return {"backbone": name, "source": source, "utterances": n_utt, "dialogues": len(dialogues),
            "parameters": sum(p.numel() for p in model.parameters()),
            "epoch_s": min(epoch_times), "epoch_all_s": epoch_times, "epoch_cpu_s": min(epoch_cpu),
            "inference": infer, "inference_dnr": infer_dnr, "rss_before_mb": rss_before,
            "peak_rss_split_mb": peak_split, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scaling_s": scaling}


def best_of(runs: list[dict]) -> dict:
    """One backbone's runs over the interleaved rounds: the fastest (CPU) figures, the largest peak RSS."""
    best = dict(min(runs, key=lambda r: r["epoch_cpu_s"]))
    for key in ("inference", "inference_dnr"):
        for t, modes in best.get(key, {}).items():
            for mode in modes:
                for clock in ("wall", "cpu"):
                    modes[mode][clock] = max(r[key][t][mode][clock] for r in runs)
    for n in best["scaling_s"]:
        best["scaling_s"][n] = {c: min(r["scaling_s"][n][c] for r in runs) for c in ("wall", "cpu")}
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    best["load"] = [min(r["load"][0] for r in runs), max(r["load"][1] for r in runs)]
    best["rounds"] = len(runs)
    return best


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "torch": torch.__version__,
            "python": platform.python_version(), "load": os.getloadavg()}


def markdown(results: list[dict], info: dict, command: str, load_after: tuple, threads: int,
             inference_threads: tuple[int, ...]) -> str:
    lines = [START, "## Backbones: speed, throughput, memory", "",
             f"Command: `{command}` (from the repository root).", "",
             f"Machine: {info['nproc']} CPU cores ({info['cpu']}), torch {info['torch']} "
             f"({threads} intra-op thread{'s' if threads > 1 else ''} for training; inference also timed with "
             f"{' and '.join(map(str, inference_threads))}), Python {info['python']}. "
             f"Load average at start {info['load'][0]:.2f}, at end {load_after[0]:.2f} — the machine was "
             f"shared with other processes while this ran, so times are upper bounds.", "",
             f"Data: {results[0]['source']} train split, {results[0]['dialogues']} dialogues / "
             f"{results[0]['utterances']} utterances, dims t 1024 / a 1582 / v 342, 6 classes; batches of 16 "
             "dialogues, bundled default hyperparameters, Adam. Epoch = forward + loss + backward + step over "
             "the split (batches pre-collated; best of the measured epochs). Peak RSS is that of a fresh "
             "process running only that backbone, after the train-split epochs and inference, and at the end "
             "(after the length-scaling runs, whose largest batch holds six 1000-utterance dialogues); the RSS "
             "before building the model (Python + torch + data) is shown separately.", "",
             "Wall-clock times suffer from the other processes; CPU time (`time.process_time`) of the "
             "same loop is shown next to them as the less noisy figure (with one thread it is what the wall "
             "time would be on an idle core; with more threads it sums over threads).", "",
             "| backbone | parameters | train epoch wall (s) | train epoch CPU (s) | RSS before model (MB) "
             "| peak RSS, train split (MB) | peak RSS, with scaling (MB) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['backbone']} | {r['parameters']:,} | {r['epoch_s']:.2f} | {r['epoch_cpu_s']:.2f} | "
                     f"{r['rss_before_mb']:.0f} | {r.get('peak_rss_split_mb', float('nan')):.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    lines += ["", "Inference throughput (utterances/s, eval mode, `torch.inference_mode`, best of 3 passes over "
              "the train split): on the training batches (16 dialogues in data order) and on length-sorted "
              "batches of 32 dialogues, as `merc.evaluation.predict.predict_dialogues` batches them (same "
              "predictions, less padding).", "",
              "| backbone | threads | batches of 16, wall | batches of 16, CPU | sorted batches of 32, wall "
              "| sorted batches of 32, CPU |",
              "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for label, key in ((r["backbone"], "inference"), (f"{r['backbone']} + DnR", "inference_dnr")):
            for t, v in r.get(key, {}).items():
                lines.append(f"| {label} | {t} | {v['batches16']['wall']:,.0f} | {v['batches16']['cpu']:,.0f} | "
                             f"{v['sorted32']['wall']:,.0f} | {v['sorted32']['cpu']:,.0f} |")
    lengths = list(results[0]["scaling_s"])
    lines += ["", f"Epoch time vs dialogue length: one training epoch over ~{SCALING_UTTERANCES} random "
              "utterances made of dialogues of the given length (batches of 16 dialogues); CPU s (wall s).", "",
              "| backbone | " + " | ".join(f"L = {n}" for n in lengths) + " | rounds | load (1 min) min → max |",
              "|---|" + "---:|" * len(lengths) + "---:|---|"]
    for r in results:
        cells = [f"{r['scaling_s'][n]['cpu']:.2f} ({r['scaling_s'][n]['wall']:.2f})" for n in lengths]
        lines.append(f"| {r['backbone']} | " + " | ".join(cells)
                     + f" | {r.get('rounds', 1)} | {r['load'][0]:.2f} → {r['load'][1]:.2f} |")
    lines += ["", "Targets (issue 3): MMGCN epoch < 5 s, inference > 20,000 utt/s. The published MMGCN "
              "reference took 223 s per epoch on data of this shape on this machine.", "", END]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    from merc.io_utils import atomic_write_text

    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    atomic_write_text(DOCS, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="*", help="backbones to run (default: all registered)")
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs (best is reported)")
    parser.add_argument("--lengths", type=int, nargs="*", default=list(LENGTHS))
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a machine shared with other busy processes, "
                             "2 OpenMP threads on 2 cores spin-wait and run many times slower)")
    parser.add_argument("--inference-threads", type=int, nargs="*", default=[1, 2],
                        help="thread counts at which inference throughput is measured (default 1 2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every backbone's worker this many times, interleaved (best CPU time is kept)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.epochs, tuple(args.lengths), args.threads,
                                tuple(args.inference_threads))))
        return
    from merc.registry import BACKBONES

    names = args.backbones or BACKBONES.list()
    info = machine()
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):  # interleaved: a slow phase of the shared machine hits every backbone
        for name in names:
            cmd = [sys.executable, __file__, "--worker", name, "--epochs", str(args.epochs), "--threads",
                   str(args.threads), "--lengths", *map(str, args.lengths), "--inference-threads",
                   *map(str, args.inference_threads)]
            load_before = os.getloadavg()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
            runs[name].append({**json.loads(proc.stdout.strip().splitlines()[-1]),
                               "load": [load_before[0], os.getloadavg()[0]]})
            r = runs[name][-1]
            speeds = ", ".join(f"{t} thread(s) {v['batches16']['cpu']:,.0f} CPU / {v['batches16']['wall']:,.0f} wall, "
                               f"sorted {v['sorted32']['cpu']:,.0f} CPU utt/s" for t, v in r["inference"].items())
            speeds += "".join(f"; + DnR {t} thread(s) {v['batches16']['cpu']:,.0f} CPU / sorted "
                              f"{v['sorted32']['cpu']:,.0f} CPU utt/s" for t, v in r["inference_dnr"].items())
            print(f"round {round_ + 1} {name}: epoch CPU {r['epoch_cpu_s']:.2f}s (wall {r['epoch_s']:.2f}s), "
                  f"inference {speeds}, peak RSS {r['peak_rss_mb']:.0f} MB, load {r['load'][0]:.2f} → "
                  f"{r['load'][1]:.2f}", flush=True)
    results = [best_of(rs) for rs in runs.values()]
    argv = [a for a in sys.argv[1:] if a != "--no-write"]
    command = " ".join(["python benchmarks/bench_backbones.py", *argv])
    section = markdown(results, info, command, os.getloadavg(), args.threads, tuple(args.inference_threads))
    if not args.no_write:
        write_docs(section)
        print(f"wrote {DOCS}")


if __name__ == "__main__":
    main()
