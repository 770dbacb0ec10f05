"""Fine-tuning throughput on MELD train: plain shuffled batches against length-bucketed ones.

Runs ``--steps`` optimiser steps (forward, backward, AdamW) of the context classifier for each
variant, interleaved over ``--rounds``, and reports real / padded tokens, CPU and wall seconds,
samples and real tokens per CPU second, the thread count and the load average.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_finetune_throughput.py \
        --data-path ../shared/data/meld --max-length 128 --context 8 --steps 12 --rounds 2

``--encoder mpnet`` measures all-mpnet-base-v2 (the ``text-mpnet`` extra) instead of MiniLM-L6.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-path", default="../shared/data/meld")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--context", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--buckets", type=int, nargs="+", default=[1, 50])
    ap.add_argument("--encoder", default="minilm", help="minilm (default), mpnet, or a hub name / local directory")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from merc.data.loading import open_dataset, prepare_dataset
    from merc.finetune.inputs import build_inputs, bucketed_batches, collate
    from merc.finetune.model import ContextClassifier
    from merc.finetune.run import load_encoder

    data = prepare_dataset(open_dataset("meld", args.data_path, None), require_features=False)[0]
    tokenizer, encoder = load_encoder(args.encoder)
    inputs = build_inputs(data.split("train"), tokenizer, args.context, args.max_length)
    lengths = [len(x) for x in inputs.ids]
    print(f"MELD train: {len(lengths)} inputs, mean {np.mean(lengths):.1f} tokens, "
          f"{np.mean(np.array(lengths) == args.max_length):.1%} at --max-length {args.max_length}")
    for bucket in args.buckets:  # whole-epoch padding of each variant (no compute)
        batches = bucketed_batches(lengths, args.batch_size, 0, 0, bucket)
        padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
        print(f"bucket {bucket:>3}: one epoch = {sum(lengths)} real tokens, {padded} padded ({1 - sum(lengths) / padded:.1%} padding)")
    model = ContextClassifier(encoder, len(data.label_names))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    totals: dict[int, np.ndarray] = {b: np.zeros(5) for b in args.buckets}  # cpu, wall, samples, tokens, padded
    for r in range(args.rounds):
        for bucket in args.buckets:
            batches = bucketed_batches(lengths, args.batch_size, seed=r, epoch=0, pool=bucket)[: args.steps]
            load = os.getloadavg()[0]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            tokens = padded = samples = 0
            for idx in batches:
                batch = collate(inputs, idx, int(tokenizer.pad_token_id or 0))
                logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                tokens += int(batch["attention_mask"].sum())
                padded += int(batch["attention_mask"].numel())
                samples += len(idx)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            totals[bucket] += [cpu, wall, samples, tokens, padded]
            print(f"round {r} bucket {bucket:>3}: {cpu:.1f} s CPU, {wall:.1f} s wall, {samples} samples, "
                  f"{tokens} real / {padded} padded tokens, load {load:.2f}")
    for bucket, (cpu, wall, samples, tokens, padded) in totals.items():
        print(f"bucket {bucket:>3} total: {samples / cpu:.2f} samples/CPU s, {tokens / cpu:.0f} real tokens/CPU s, "
              f"{padded / cpu:.0f} padded tokens/CPU s, CPU s per epoch ≈ {cpu / samples * len(lengths):.0f} "
              f"({torch.get_num_threads()} thread, load now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
