"""CSV tables a person can read: atomic CSV writing plus a data dictionary next to the tables.

Every directory the library writes tables into gets ``data_dictionary.md`` (for people) and
``data_dictionary.json`` (for programs): for each table, what one row is and what every column
means (families of columns such as ``prob_<class>`` are described once). Writers that share a
directory merge their entries, so the dictionary always covers every table in it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from merc.io_utils import atomic_write_json, atomic_write_text

DICTIONARY_MD = "data_dictionary.md"
DICTIONARY_JSON = "data_dictionary.json"


@dataclass
class TableDoc:
    """What a table holds.

    Attributes:
        file: file name inside its directory (e.g. ``per_utterance.csv``).
        row: what one row is.
        columns: column name (or family, e.g. ``prob_<class>``) → meaning, in column order.
    """

    file: str
    row: str
    columns: dict[str, str] = field(default_factory=dict)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write ``header`` and ``rows`` as CSV (``\\n`` line ends) atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(header))
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def write_data_dictionary(out_dir: str | Path, tables: Sequence[TableDoc], title: str | None = None) -> Path:
    """Add ``tables`` to the data dictionary of ``out_dir`` (merging with entries already there)."""
    out = Path(out_dir)
    state: dict[str, Any] = {"title": title or "Data dictionary", "tables": {}}
    existing = out / DICTIONARY_JSON
    if existing.is_file():
        try:
            old = json.loads(existing.read_text(encoding="utf-8"))
            state["tables"].update(old.get("tables", {}))
            state["title"] = title or old.get("title", state["title"])
        except (OSError, json.JSONDecodeError):
            pass  # a damaged dictionary is rewritten from what is known now
    for t in tables:
        state["tables"][t.file] = {"row": t.row, "columns": dict(t.columns)}
    atomic_write_json(existing, state)
    lines = [f"# {state['title']}", "", "What every table in this directory holds, column by column.", ""]
    for name in sorted(state["tables"]):
        entry = state["tables"][name]
        lines += [f"## `{name}`", "", f"One row = {entry['row']}.", "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{c}` | {d} |" for c, d in entry["columns"].items()]
        lines.append("")
    path = out / DICTIONARY_MD
    atomic_write_text(path, "\n".join(lines))
    return path


#: per-utterance meta keys of the synthetic generator → how to print one value
_PLANTED = ("unique", "redundant", "synergy", "context_only")


def readable_meta(key: str, value: Any) -> Any:
    """A meta value as a person reads it: planted kinds by name (``interaction``), carrier modalities
    as letters (``evidence_mask``, ``evidence_modality``), flags as yes/no (``inherited``); others as is."""
    v = value.item() if hasattr(value, "item") else value
    if key == "interaction" and isinstance(v, int):
        return _PLANTED[v] if 0 <= v < len(_PLANTED) else ""
    if key == "evidence_mask" and isinstance(v, int):
        return "".join(m for m, bit in (("t", 1), ("a", 2), ("v", 4)) if v & bit)
    if key == "evidence_modality" and isinstance(v, int):
        return "tav"[v] if 0 <= v < 3 else ""
    if key == "inherited" and isinstance(v, int):
        return "yes" if v else "no"
    return v


META_COLUMNS = {"interaction": "synthetic data: planted evidence kind (unique, redundant, synergy, context_only)",
                "evidence_mask": "synthetic data: modalities carrying the planted evidence (t, a, v letters)",
                "evidence_modality": "synthetic data: carrier modality of unique evidence (empty otherwise)",
                "inherited": "synthetic data: label kept from the speaker's previous utterance (yes/no)",
                "session": "recording session number"}


PREDICTION_BASE = ("dialogue_id", "utterance_id", "speaker", "text", "true_label", "label", "confidence")
#: columns of a ``merc predict`` CSV (the base ones appear only when the rows have them)
PREDICTION_COLUMNS = {
    "dialogue_id": "conversation identifier", "utterance_id": "utterance identifier", "speaker": "speaker name",
    "text": "transcript", "true_label": "gold emotion (labelled input only)", "label": "predicted emotion",
    "confidence": "its probability", "prob_<class>": "probability of each emotion class",
    "interaction_pattern": "modality-interaction pattern: unique, redundant, synergy or none (docs/explanations.md)",
    "interaction_modalities": "modalities of the pattern (t text, a audio, v visual)",
    "explanation": "the full explanation as JSON: the method's own (kind, ...) and 'interaction' (gain, main "
                   "effects, dividends, Shapley values, in nats)"}


def write_file_dictionary(path: str | Path, row: str, columns: dict[str, str]) -> Path:
    """``<stem>.dictionary.md`` next to a single table written where other files may live (e.g. ``merc predict --out``)."""
    p = Path(path)
    lines = [f"# Data dictionary of `{p.name}`", "", f"One row = {row}.", "", "| column | meaning |", "|---|---|",
             *[f"| `{c}` | {d} |" for c, d in columns.items()], ""]
    target = p.with_name(f"{p.stem}.dictionary.md")
    atomic_write_text(target, "\n".join(lines))
    return target


__all__ = ["PREDICTION_BASE", "PREDICTION_COLUMNS", "write_file_dictionary", "META_COLUMNS", "readable_meta", "DICTIONARY_JSON", "DICTIONARY_MD", "TableDoc", "write_csv", "write_data_dictionary"]
