"""``merc evaluate``: score a trained model directory on a split of a dataset."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from merc.cli import add_command


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from merc.data.loading import load_dataset
    from merc.errors import MercError
    from merc.evaluation.cross_labels import resolve_label_map, score_mapped
    from merc.evaluation.metrics import compute_metrics
    from merc.evaluation.predict import predict_dialogues
    from merc.evaluation.report import write_confusion
    from merc.io_utils import atomic_write_json, atomic_write_text
    from merc.training.model_dir import load_model_dir

    bundle = load_model_dir(args.model_dir)
    data_cfg = bundle.config.data
    if args.data:
        data_cfg = replace(data_cfg, dataset=args.data, path=args.data_path, format=args.format)
    dataset = load_dataset(data_cfg)
    mapped = args.label_map is not None or list(dataset.label_names) != list(bundle.label_names)
    check_compatible(bundle, dataset, labels=not mapped)
    lmap = resolve_label_map(bundle.label_names, list(dataset.label_names), args.label_map) if mapped else None
    dialogues = dataset.split(args.split)
    if not dialogues:
        raise MercError(f"{data_cfg.dataset}: split '{args.split}' is empty")
    preds = predict_dialogues(bundle.method, dialogues, bundle.modalities, args.batch_size)
    if (preds.labels < 0).all():
        raise MercError(f"{data_cfg.dataset}: split '{args.split}' has no gold labels; use 'merc predict' instead")
    classes, gold_names, probs, predicted = bundle.label_names, list(dataset.label_names), preds.probs, preds.predicted
    if lmap is not None:
        metrics, probs = score_mapped(preds.labels, preds.probs, lmap)
        classes, predicted = list(lmap.shared), probs.argmax(1)
    else:
        metrics = compute_metrics(preds.labels, preds.predicted, classes)
    out = Path(args.out) if args.out else Path(args.model_dir) / f"eval_{args.split}"
    atomic_write_json(out / "metrics.json", {"split": args.split, "dataset": data_cfg.dataset,
                                             "selection": bundle.metrics.get("selection"), **metrics})
    write_confusion(out / "confusion", metrics["confusion"], classes, f"{args.split} confusion")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["dialogue_id", "utterance_id", "gold", "predicted", *[f"p_{n}" for n in classes]])
    for i in range(len(preds.labels)):
        gold = gold_names[preds.labels[i]] if preds.labels[i] >= 0 else ""
        w.writerow([preds.dialogue_ids[i], preds.utterance_ids[i], gold, classes[predicted[i]],
                    *[f"{p:.6f}" for p in probs[i]]])
    atomic_write_text(out / "predictions.csv", buf.getvalue())
    if lmap is not None:
        print(f"label map ({lmap.via}): model {', '.join(bundle.label_names)} → data {', '.join(gold_names)}; "
              f"scored in {', '.join(classes)}")
        if metrics["unscored"]:
            print("  data classes without a counterpart in the model (not scored): "
                  + ", ".join(f"{c} ({n} utterances)" for c, n in metrics["unscored"].items()))
        if lmap.unmapped_model:
            print(f"  model classes without a counterpart in the data: {', '.join(lmap.unmapped_model)} "
                  f"(mean probability {metrics['discarded_probability']:.3f} discarded)")
    from merc.tables import TableDoc, write_data_dictionary

    write_data_dictionary(out, [TableDoc("predictions.csv", "one utterance of the split", {
        "dialogue_id": "dialogue identifier", "utterance_id": "utterance identifier", "gold": "gold emotion",
        "predicted": "predicted emotion", "p_<class>": "predicted probability of each class"})],
        "Evaluation: data dictionary")
    if args.missing_modality:
        from merc.data.collate import make_loader
        from merc.data.modality_subsets import resolve_stand_in
        from merc.evaluation.missing_modality import missing_modality_rows, write_missing_modality_report
        from merc.explain.interactions import collect_interactions

        stand, source = resolve_stand_in(bundle.stand_in, dialogues, bundle.modalities)
        got = collect_interactions(bundle.method, make_loader(dialogues, bundle.modalities, args.batch_size, False),
                                   stand, bundle.modalities, "dialogue")
        rows = missing_modality_rows(got["log_probs"], got["label"], bundle.modalities, bundle.label_names)
        write_missing_modality_report(rows, out, f"{args.split}: weighted F1 by available modalities ({source})")
        print("weighted F1 by available modalities: " + ", ".join(f"{r['present']} {r['weighted_f1']:.1f}"
                                                                  for r in rows))
    print(f"{args.split}: weighted F1 {metrics['weighted_f1']:.2f}  accuracy {metrics['accuracy']:.2f}  "
          f"macro F1 {metrics['macro_f1']:.2f}  (n={metrics['n']})")
    for name, f1 in metrics["per_class_f1"].items():
        print(f"  {name:12s} F1 {f1:6.2f}  support {metrics['support'][name]}")
    print(f"written: {out}/metrics.json, confusion.csv, confusion.png, predictions.csv")
    return 0


def check_compatible(bundle, dataset, labels: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Refuse data whose modalities, dims or (with ``labels``) label set do not match the model."""
    from merc.errors import DataError

    expected = bundle.architecture["input_dims"]
    for m, d in expected.items():
        if m not in dataset.dims:
            raise DataError(dataset.source or dataset.name, f"has no '{m}' features but the model needs them",
                            field="features", fix=f"provide modalities {''.join(expected)}")
        if dataset.dims[m] != d:
            raise DataError(dataset.source or dataset.name, f"'{m}' features are {dataset.dims[m]}-d, the model "
                            f"expects {d}-d", field=f"features.{m}", fix="extract features as the model was trained")
    if labels and list(dataset.label_names) != list(bundle.label_names):
        raise DataError(dataset.source or dataset.name, "label set differs from the model's", field="labels",
                        fix=f"expected {', '.join(bundle.label_names)}")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "evaluate", "score a trained model directory on a dataset split", _run,
                    description="Evaluate MODEL_DIR on a split (default test) of the data it was trained on, or "
                                "of DATA. Writes metrics.json, confusion.csv/png and predictions.csv.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a model directory written by 'merc train' (seed_<s>/)")
    p.add_argument("data", metavar="DATA", nargs="?", help="catalog name or data file (default: training data)")
    p.add_argument("--data-path", dest="data_path", help="local files for a catalog dataset")
    p.add_argument("--missing-modality", dest="missing_modality", action="store_true",
                   help="also score every subset of the model's modalities (absent ones replaced by their training "
                        "mean) into missing_modality.{md,csv,json,png}")
    p.add_argument("--format", help="force the data file format")
    p.add_argument("--split", default="test", choices=("train", "dev", "test"), help="split to score")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=32, help="dialogues per batch")
    p.add_argument("--out", metavar="DIR", help="output directory (default MODEL_DIR/eval_<split>)")
    p.add_argument("--label-map", dest="label_map", metavar="auto|FILE.json",
                   help="score a model on data with another label set: 'auto' maps both through Ekman-7 "
                        "(IEMOCAP-6/4, MELD-7, EmoryNLP-7, Ekman-7; also used automatically when the label sets "
                        "differ), or a JSON object of model class -> data class or null (default: none needed "
                        "when the label sets are equal)")
