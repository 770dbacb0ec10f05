"""Leave-one-group-out protocol (DRKF's IEMOCAP-4 leave-one-session-out)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from merc.config import ExperimentConfig
from merc.data.schema import Dialogue, DialogueDataset
from merc.errors import DataError
from merc.evaluation.protocols import (fold_dataset, group_of, iemocap4_leave_one_session_out, leave_one_group_out,
                                       run_leave_one_group_out)

IEMOCAP6 = ["hap", "sad", "neu", "ang", "exc", "fru"]


def iemocap_like(per_session: int = 4) -> DialogueDataset:
    dialogues = []
    for s in range(1, 6):
        for k in range(per_session):
            labels = np.array([0, 4, 5, 1, 3, 2])  # hap exc fru sad ang neu
            dialogues.append(Dialogue(f"Ses0{s}{'FM'[k % 2]}_impro0{k}", ["M", "F"] * 3,
                                      {"t": np.zeros((6, 2), np.float32)}, labels))
    ids = [d.id for d in dialogues]
    return DialogueDataset("iemo", dialogues, IEMOCAP6, {"train": ids[:16], "test": ids[16:]})


def test_group_from_id_and_meta() -> None:
    assert group_of(Dialogue("Ses03M_script01_2", ["a"])) == "3"
    assert group_of(Dialogue("x", ["a", "b"], meta={"session": np.array([7, 7])})) == "7"
    assert group_of(Dialogue("x", ["a"], meta={"fold": "B"}), "fold") == "B"
    with pytest.raises(DataError, match="meta.session"):
        group_of(Dialogue("dia12", ["a"]))


def test_folds_hold_out_one_session_and_validate_inside_training() -> None:
    ds = iemocap_like()
    folds = leave_one_group_out(ds, dev_fraction=0.25, seed=0)
    assert [f.test_group for f in folds] == ["1", "2", "3", "4", "5"]
    for f in folds:
        assert all(group_of(ds[i]) == f.test_group for i in f.test_ids) and len(f.test_ids) == 4
        assert not set(f.dev_ids) & set(f.test_ids) and not set(f.train_ids) & set(f.test_ids)
        assert not set(f.dev_ids) & set(f.train_ids)
        assert len(f.dev_ids) == 4 and len(f.train_ids) == 12
        data = fold_dataset(ds, f)
        assert data.splits["test"] == f.test_ids and data.meta["test_group"] == f.test_group
    assert leave_one_group_out(ds, seed=0)[0].dev_ids == leave_one_group_out(ds, seed=0)[0].dev_ids


def test_single_group_is_refused() -> None:
    ds = iemocap_like()
    one = ds.subset([d.id for d in ds.dialogues if d.id.startswith("Ses01")])
    with pytest.raises(DataError, match="at least two groups"):
        leave_one_group_out(one)


def test_run_reports_per_fold_and_mean_std(tmp_path: Path) -> None:
    seen = []

    def fake_train(config, seed, data, out):  # noqa: ANN001 - engine-compatible stub
        seen.append(data)
        g = int(data.meta["test_group"])
        return SimpleNamespace(metrics={"test": {"ua": 50.0 + g, "wa": 60.0 + g + seed, "weighted_f1": 40.0 + g,
                                                 "accuracy": 60.0 + g + seed}})

    config = ExperimentConfig.from_dict({"trainer": {"seeds": [0, 2]}})
    result = iemocap4_leave_one_session_out(config, iemocap_like(), tmp_path, train_fn=fake_train)
    assert len(result.runs) == 10
    assert seen[0].label_names == ["hap", "ang", "neu", "sad"]
    assert seen[0].dialogues[0].labels.tolist() == [0, 0, -1, 3, 1, 2]  # hap+exc merged, fru unlabelled
    assert result.per_fold["session3"]["wa"] == pytest.approx(64.0)
    assert result.summary["ua"]["mean"] == pytest.approx(53.0)
    assert result.summary["ua"]["std"] == pytest.approx(np.std([51, 52, 53, 54, 55], ddof=1))
    saved = json.loads((tmp_path / "protocol.json").read_text())
    assert saved["summary"]["weighted_f1"]["mean"] == pytest.approx(43.0)
    assert "mean ± std" in (tmp_path / "protocol.md").read_text()


def test_wrong_label_set_is_refused(tmp_path: Path) -> None:
    ds = iemocap_like()
    ds.label_names = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(DataError, match="IEMOCAP"):
        iemocap4_leave_one_session_out(ExperimentConfig(), ds, tmp_path, train_fn=lambda *a: None)


def test_generic_run_uses_meta_groups(tmp_path: Path) -> None:
    ds = iemocap_like()
    for k, d in enumerate(ds.dialogues):
        d.meta["speaker_group"] = "AB"[k % 2]
    result = run_leave_one_group_out(ExperimentConfig(), ds, tmp_path, group_key="speaker_group",
                                     train_fn=lambda c, s, data, o: SimpleNamespace(metrics={"test": {
                                         "ua": 1.0, "wa": 2.0, "weighted_f1": 3.0, "accuracy": 2.0}}))
    assert sorted(result.per_fold) == ["speaker_groupA", "speaker_groupB"]


def test_synthetic_sessions_follow_iemocap_layout() -> None:
    from merc.registry import DATASETS

    data = DATASETS.create("synthetic-small", seed=0, sessions=3)
    by_split = {s: {group_of(d) for d in data.split(s)} for s in data.splits}
    assert by_split["test"] == {"3"}
    assert by_split["train"] == {"1", "2"}
    first = data.split("train")[0]
    assert np.all(first.meta["session"] == first.meta["session"][0])  # one session per dialogue


def test_cli_protocol_runs_every_fold_and_never_selects_on_test(tmp_path: Path) -> None:
    from merc.cli import main

    out = tmp_path / "logo"
    assert main(["train", "--dataset", "synthetic-small", "-o", "data.options.sessions=3", "--protocol",
                 "leave-one-group-out", "--epochs", "1", "--seeds", "0", "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "protocol.json").read_text())
    assert [r["group"] for r in report["runs"]] == ["1", "2", "3"]
    assert report["selection"] == "validation split inside each training fold"
    assert set(report["summary"]) == {"ua", "wa", "weighted_f1"}
    assert (out / "protocol.md").read_text().count("session") >= 3


def test_cli_rejects_an_unknown_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    from merc.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--protocol", "kfold"])
    assert exc.value.code == 2
