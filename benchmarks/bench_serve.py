"""Bounded load test of ``merc serve`` on loopback: N concurrent clients for a fixed time.

Two servers run side by side (one torch thread each): ``batched`` (the defaults: requests that
arrive within 5 ms share one forward pass) and ``unbatched`` (``--max-batch-utterances 1``: one
request per forward pass). Rounds alternate between them (A B A B ...) so that load from other
processes on a shared machine hits both alike. Every client posts a 4-utterance MELD-style
conversation in a loop; per variant we report requests/s, p50/p99 latency, the server's CPU
seconds per request (from /proc, not distorted by other load), its peak RSS (VmHWM), and check
that every request got a 200 with one row per utterance (no 5xx, nothing lost).

The model: ``--model DIR``, or (default) a tiny DnR-over-late-fusion text model trained on MiniLM
features of 40 MELD training dialogues from ../shared/data (about a minute). Only 127.0.0.1.

    OMP_NUM_THREADS=1 python benchmarks/bench_serve.py                  # 8 clients, 2 × 2 rounds of 15 s
    python benchmarks/bench_serve.py --model runs/meld/seed_0 --clients 16 --seconds 30 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONVERSATIONS = [
    [("Ann", "I can't believe you did that!"), ("Bob", "Sorry... I really didn't mean to."),
     ("Ann", "Whatever. Just go."), ("Bob", "Please, let me explain.")],
    [("Cat", "We won the lottery!!"), ("Dan", "No way! That's amazing!"), ("Cat", "I know, right?"),
     ("Dan", "What are we going to do with all that money?")],
    [("Eve", "Is anyone home?"), ("Fay", "In the kitchen."), ("Eve", "Something smells terrible."),
     ("Fay", "Oh no, the soup!")],
]
VARIANTS = {"batched": [], "unbatched": ["--max-batch-utterances", "1"]}


def train_tiny_model(out: Path) -> Path:
    from merc.config import DataConfig, ExperimentConfig, ModelConfig, TrainerConfig
    from merc.data.formats.transcripts import read_meld_csvs
    from merc.features import FeatureCache, build_extractors, extract_features
    from merc.training.engine import train_run

    meld = read_meld_csvs(REPO.parent / "shared" / "data" / "meld")
    ids = meld.splits["train"][:40] + meld.splits["dev"][:10] + meld.splits["test"][:10]
    data = extract_features(meld.subset(ids, name="meld-bench"), build_extractors({"t": "minilm"}),
                            FeatureCache(out / "cache", progress=False))
    config = ExperimentConfig(data=DataConfig(dataset="bench", modalities="t", batch_size=8),
                              model=ModelConfig(method="dnr", backbone="late_fusion", backbone_options={"hidden": 64},
                                                method_options={"dim": 32, "divide_max_epochs": 3}),
                              trainer=TrainerConfig(max_epochs=5, patience=0, progress=False))
    train_run(config, 0, data, out / "model")
    return out / "model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "merc.cli", "serve", str(model), "--port", str(port), *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"merc serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("merc serve did not come up")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def proc_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(url: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent loops posting conversations for ``seconds``; latencies and failures."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    sent = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        async def client(k: int) -> None:
            nonlocal sent
            i = k
            while time.perf_counter() < deadline:
                conv = CONVERSATIONS[i % len(CONVERSATIONS)]
                i += 1
                payload = {"dialogue_id": f"c{k}-{i}", "utterances": [{"speaker": s, "text": t} for s, t in conv]}
                sent += 1
                start = time.perf_counter()
                try:
                    res = await http.post("/predict", json=payload)
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - start)
                rows = res.json().get("utterances", []) if res.status_code == 200 else []
                if res.status_code != 200:
                    failures[f"HTTP {res.status_code}"] = failures.get(f"HTTP {res.status_code}", 0) + 1
                elif len(rows) != len(conv) or any(r["dialogue_id"] != payload["dialogue_id"] for r in rows):
                    failures["lost or mixed rows"] = failures.get("lost or mixed rows", 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        wall = time.perf_counter() - start
    return {"sent": sent, "latencies": latencies, "failures": failures, "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="model directory (default: train a tiny MELD text model)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant (interleaved)")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="bench_serve_")
    model = args.model or train_tiny_model(Path(tmp.name))
    servers = {name: start_server(model, extra) for name, extra in VARIANTS.items()}
    totals = {name: {"sent": 0, "latencies": [], "failures": {}, "wall": 0.0, "cpu": 0.0} for name in VARIANTS}
    load_before = os.getloadavg()
    try:
        for name, (_, url) in servers.items():  # warm-up (first request loads the text encoder)
            httpx.post(url + "/predict", json={"utterances": [{"speaker": "A", "text": "hi"}]}, timeout=120)
        for r in range(args.rounds):
            for name, (proc, url) in servers.items():
                cpu0 = proc_cpu_seconds(proc.pid)
                result = asyncio.run(load(url, args.clients, args.seconds))
                t = totals[name]
                t["cpu"] += proc_cpu_seconds(proc.pid) - cpu0
                t["sent"] += result["sent"]
                t["latencies"] += result["latencies"]
                t["wall"] += result["wall"]
                for k, v in result["failures"].items():
                    t["failures"][k] = t["failures"].get(k, 0) + v
                print(f"round {r + 1} {name}: {len(result['latencies'])} requests in {result['wall']:.1f} s",
                      file=sys.stderr)
        health = {name: httpx.get(url + "/health").json() for name, (_, url) in servers.items()}
        rss = {name: proc_peak_rss_mib(proc.pid) for name, (proc, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
        tmp.cleanup()
    load_after = os.getloadavg()
    print(f"\n{args.clients} concurrent clients, {args.rounds} interleaved rounds of {args.seconds:.0f} s per variant, "
          f"4 utterances per request; server: 1 torch thread (OMP_NUM_THREADS=1), {cpu_name()}, "
          f"{os.cpu_count()} cores; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after\n")
    print("| variant | requests | requests/s | utterances/s | p50 latency (ms) | p99 latency (ms) "
          "| server CPU ms/request | mean requests per batch | peak RSS (MiB) | failures |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for name, t in totals.items():
        lat = np.array(t["latencies"]) * 1000
        done = len(lat)
        fails = t["failures"]  # transport errors, non-200 answers, answers missing or mixing rows
        ok &= not fails and done == t["sent"]
        h = health[name]
        per_forward = h["requests"] / max(h["batches"], 1)
        print(f"| {name} | {done} | {done / t['wall']:.1f} | {4 * done / t['wall']:.1f} | {np.percentile(lat, 50):.0f} "
              f"| {np.percentile(lat, 99):.0f} | {1000 * t['cpu'] / max(done, 1):.1f} | {per_forward:.2f} "
              f"| {rss[name]:.0f} | {fails or 'none'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
