"""``merc finetune``: fine-tune a text encoder on utterances in their speaker-tagged dialogue context."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _run(args: argparse.Namespace) -> int:
    from merc.data.loading import open_dataset, prepare_dataset
    from merc.errors import ConfigError
    from merc.finetune import FinetuneConfig, finetune
    from merc.finetune.run import limited

    config = FinetuneConfig(encoder=args.encoder, context=args.context, max_length=args.max_length,
                            pooling=args.pooling, epochs=args.epochs, max_steps=args.max_steps,
                            batch_size=args.batch_size, bucket=args.bucket, lr=args.lr, head_lr=args.head_lr, val_every=args.val_every,
                            class_weight_power=args.class_weight_power,
                            seed=args.seed, accelerator=args.accelerator, precision=args.precision,
                            threads=args.threads, progress=not args.no_progress, limit_dialogues=args.limit_dialogues,
                            revision=args.revision)
    raw = open_dataset(args.data, args.data_path, args.format)
    if args.trained:  # new conversations need no labels or splits
        return _export(args.trained, limited(raw, args.limit_dialogues), args)
    dataset = limited(prepare_dataset(raw, require_features=False)[0], args.limit_dialogues)
    if not args.out:
        raise ConfigError("--out DIR is required to fine-tune (or give --trained DIR --export-features FILE)")
    record = finetune(dataset, config, args.out)
    t = record["timing"]
    for split, m in record["metrics"].items():
        print(f"[merc] {split}: weighted F1 {m['weighted_f1']:.2f}, accuracy {m['accuracy']:.2f}, "
              f"macro F1 {m['macro_f1']:.2f} ({m['n']} utterances; the classifier predicting directly)")
    print(f"[merc] {t['steps']} steps, {t['train_samples']} samples in {t['train_batches_wall_s']:.1f} s wall / "
          f"{t['train_batches_cpu_s']:.1f} s CPU ({t['threads']} thread(s), load {t['loadavg_start'][0]:.2f}); "
          f"one epoch ≈ {t['epoch_wall_s_estimate']:.0f} s wall, {t['epoch_cpu_s_estimate']:.0f} s CPU")
    print(f"[merc] wrote {args.out}/ (encoder/, head.safetensors, finetune.json)")
    return _export(args.out, dataset, args) if args.export_features else 0


def _export(trained: str, dataset, args: argparse.Namespace) -> int:  # noqa: ANN001 - a DialogueDataset
    from merc.errors import ConfigError
    from merc.finetune import export_features

    if not args.export_features:
        raise ConfigError("--trained needs --export-features FILE (the features to write)")
    table, npz = export_features(trained, dataset, args.export_features, batch_size=args.batch_size * 2)
    print(f"[merc] wrote {table} and {npz}: context-aware text features for merc train --dataset {table} "
          "--modalities t")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "finetune", "fine-tune a text encoder on utterances in their dialogue context", _run,
                    description="Fine-tune a Hugging Face encoder (offline default: the bundled all-MiniLM-L6-v2) to "
                                "classify each utterance of DATA given its speaker-tagged dialogue history "
                                "('speaker: utterance' for the past --context utterances + the target, truncated "
                                "from the left to --max-length tokens), as EmoBERTa and CoMPM do. Dev weighted F1 "
                                "selects the weights; dev and test are scored; --export-features writes the "
                                "fine-tuned utterance vectors as a features file for merc train (docs/finetune.md).")
    p.add_argument("data", metavar="DATA", help="catalog name (meld, emorynlp) or a labelled utterance table")
    p.add_argument("--data-path", dest="data_path", metavar="PATH", help="local files for a catalog dataset")
    p.add_argument("--format", help="force the input file format instead of auto-detection")
    p.add_argument("--out", metavar="DIR", help="output directory (encoder/, head.safetensors, finetune.json)")
    p.add_argument("--trained", metavar="DIR", help="skip training: export --export-features of DATA with the "
                                                    "fine-tuned encoder in DIR (e.g. for new conversations)")
    p.add_argument("--encoder", default="minilm", help="minilm (bundled, offline), mpnet (all-mpnet-base-v2, offline with "
                                                       "the text-mpnet extra), a hub model name (online) or a local "
                                                       "transformers directory")
    p.add_argument("--revision", help="hub revision of --encoder")
    p.add_argument("--context", type=int, default=8, help="past utterances prepended to each target")
    p.add_argument("--max-length", dest="max_length", type=int, default=128, help="tokens per input")
    p.add_argument("--pooling", default="mean", choices=("mean", "cls", "target"), help="utterance vector")
    p.add_argument("--epochs", type=int, default=3, help="training epochs")
    p.add_argument("--max-steps", dest="max_steps", type=int, default=-1, help="stop after N optimiser steps (-1: off)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=16, help="utterances per step")
    p.add_argument("--bucket", type=int, default=50,
                   help="length bucketing: sort each pool of N shuffled batches by length (less padding; 1: off)")
    p.add_argument("--lr", type=float, default=3e-5, help="encoder peak learning rate (linear warm-up 10%%, decay)")
    p.add_argument("--class-weight-power", dest="class_weight_power", type=float, default=0.0,
                   help="class-weighted loss, weights (N/(C·n_c))^POWER from train (0: off, 0.5: square root)")
    p.add_argument("--head-lr", dest="head_lr", type=float, default=1e-3, help="learning rate of the linear head")
    p.add_argument("--val-every", dest="val_every", type=float, default=1.0,
                   help="validate on dev every this fraction of an epoch (≤ 1) or N steps (> 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--accelerator", default="auto", help="auto, cpu, gpu (Lightning accelerator)")
    p.add_argument("--precision", default="auto", help="auto (bf16-mixed on a bf16 GPU, else 32-true) or a "
                                                       "Lightning precision such as bf16-mixed")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--limit-dialogues", dest="limit_dialogues", type=int, default=0,
                   help="use only the first N dialogues of each split (0: all)")
    p.add_argument("--export-features", dest="export_features", metavar="FILE",
                   help="also write DATA with the fine-tuned text features (.csv/.jsonl + .npz) for merc train")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="hide progress bars")
