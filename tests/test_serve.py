"""``merc serve``: the REST API (in-process), micro-batching, limits, and the page driven in a real
headless chromium against a real ``merc serve`` process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import require_optional
from fastapi.testclient import TestClient
from test_predict import meld_model  # noqa: F401  (the fixture)

from merc.cli import main
from merc.features import build_extractors, extract_features
from merc.inference import Predictor
from merc.serve.app import Limits, create_app

CONVERSATION = [("Ann", "I can't believe you did that!"), ("Bob", "Sorry... I really didn't mean to."),
                ("Ann", "Whatever. Just go."), ("Bob", "Wow, we won the lottery!!")]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def model_dir(meld_model: Path) -> Path:
    """DnR over late fusion on MiniLM features of a few official MELD dialogues (test_predict's)."""
    return meld_model


@pytest.fixture(scope="module")
def predictor(model_dir: Path) -> Predictor:
    return Predictor.from_dir(model_dir)


def body(rows=CONVERSATION, dialogue_id: str = "c1") -> dict:
    return {"dialogue_id": dialogue_id, "utterances": [{"speaker": s, "text": t} for s, t in rows]}


@pytest.fixture(scope="module")
def client(predictor: Predictor):
    limits = Limits(max_body_bytes=4096, max_utterances=8, max_text_chars=100)
    with TestClient(create_app(predictor, "tiny", limits)) as c:
        yield c


def test_predict_returns_the_predictors_rows_exactly(client: TestClient, predictor: Predictor) -> None:
    res = client.post("/predict", json=body())
    assert res.status_code == 200, res.text
    data = res.json()
    expected = predictor.predict([{"dialogue_id": "c1", "speaker": s, "text": t} for s, t in CONVERSATION])
    assert data["labels"] == predictor.label_names and data["model"] == "tiny"
    assert json.loads(json.dumps(expected)) == data["utterances"]  # label, every score, explanation as is
    row = data["utterances"][0]
    assert set(row["probabilities"]) == set(predictor.label_names)
    assert row["explanation"]["kind"] == "components" and row["label"] == max(row["probabilities"],
                                                                              key=row["probabilities"].get)


def test_health_model_docs_and_page_are_served_offline(client: TestClient, predictor: Predictor) -> None:
    assert client.get("/health").json()["status"] == "ok"
    card = client.get("/model").json()
    assert card["labels"] == predictor.label_names and card["modalities"] == ["t"]
    assert card["features"]["t"]["name"] == "minilm" and card["limits"]["max_utterances"] == 8
    assert card["method"] == "dnr" and card["backbone"] == "late_fusion"
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    for path in ("/docs", "/"):
        html = client.get(path).text
        assert "<html" in html.lower() and "http://" not in html and "https://" not in html
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200


@pytest.mark.parametrize("payload, status, code, field", [
    (body(CONVERSATION * 3), 413, "too_many_utterances", "utterances"),
    (body([("Ann", "x" * 101)]), 422, "text_too_long", "utterances[0].text"),
    ({"utterances": [{"speaker": "Ann", "text": "hi", "video": "/etc/passwd"}]}, 422, "invalid_request", None),
    ({"utterances": []}, 422, "invalid_request", "utterances"),
    ({"utterances": [{"text": "no speaker"}]}, 422, "invalid_request", "utterances.0.speaker"),
    (body([("Ann", "bell \x07")]), 422, "control_characters", "utterances[0].text"),
    ({"utterances": [{"speaker": "A", "text": "hi", "features": {"t": [1.0, 2.0]}}]}, 422, "unprocessable", None),
])
def test_limits_and_bad_requests_are_clear_json_4xx(client: TestClient, payload, status, code, field) -> None:
    res = client.post("/predict", json=payload)
    assert res.status_code == status, res.text
    error = res.json()["error"]
    assert error["code"] == code and error["message"]
    if field is not None:
        assert error["field"] == field
    if "video" in json.dumps(payload):
        assert "never opens files" in error["message"]


def test_body_limit_with_and_without_content_length(client: TestClient) -> None:
    big = json.dumps(body([("Ann", "y" * 90)] * 60)).encode()
    assert len(big) > 4096
    res = client.post("/predict", content=big, headers={"Content-Type": "application/json"})
    assert res.status_code == 413 and res.json()["error"]["code"] == "body_too_large"
    chunked = client.post("/predict", content=iter([big[:3000], big[3000:]]),
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "body_too_large"
    small = json.dumps(body()).encode()
    ok = client.post("/predict", content=iter([small[:20], small[20:]]), headers={"Content-Type": "application/json"})
    assert ok.status_code == 200 and len(ok.json()["utterances"]) == len(CONVERSATION)
    broken = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["error"]["message"]


def test_concurrent_requests_share_batches_and_stay_apart(predictor: Predictor) -> None:
    app = create_app(predictor, "tiny", Limits(max_wait_ms=200))
    batcher = app.state.batcher
    from merc.serve.app import PredictRequest, request_records

    requests = [body(CONVERSATION[k:] or CONVERSATION, dialogue_id="same") for k in range(4)]
    records = [request_records(PredictRequest(**r), app.state.limits) for r in requests]

    async def run() -> list:
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(r) for r in records))
        finally:
            await batcher.stop()

    results = asyncio.run(run())
    assert batcher.stats.requests == 4 and batcher.stats.batches < 4  # combined into fewer forward passes
    for recs, rows in zip(records, results):
        alone = predictor.predict(recs)
        assert [r["text"] for r in rows] == [r["text"] for r in recs]
        assert [r["dialogue_id"] for r in rows] == ["same"] * len(recs)
        for got, want in zip(rows, alone):
            assert got["label"] == want["label"]
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_cli_refuses_a_missing_model_and_binds_loopback_by_default(tmp_path: Path, capsys) -> None:
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "not a model directory" in capsys.readouterr().err
    from merc.cli import build_parser

    args = build_parser().parse_args(["serve", "m"])
    assert args.host == "127.0.0.1"
    assert main(["serve", str(tmp_path), "--max-utterances", "0"]) == 2


def test_ready_model_names_resolve_through_from_pretrained(monkeypatch, tmp_path: Path) -> None:
    from merc.errors import MercError
    from merc.serve import load_predictor

    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(Predictor, "from_pretrained", classmethod(lambda cls, name, batch_size=16:
                                                                   calls.append((name, batch_size)) or "ready"),
                        raising=False)
    assert load_predictor("meld-text", batch_size=4, cache_dir=None) == ("ready", "meld-text")
    assert calls == [("meld-text", 4)]  # options the hook does not take are left out
    monkeypatch.delattr(Predictor, "from_pretrained")
    with pytest.raises(MercError, match="not a model directory"):
        load_predictor("meld-text")


# -- a real server and a real browser -------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir: Path):
    """``merc serve MODEL`` as a subprocess on a free loopback port."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "merc.cli", "serve", str(model_dir), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # imports alone take a minute on a loaded 2-core machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"merc serve exited: {proc.stdout.read()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("merc serve did not come up in 300 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_page_in_headless_chromium_shows_the_apis_labels(server: str) -> None:
    require_optional(CHROMIUM.is_file(), "/usr/bin/chromium", "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    api = httpx.post(server + "/predict", json=body(dialogue_id="d1"), timeout=60).json()
    pasted = "\n".join(f"{s}: {t}" for s, t in CONVERSATION)
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
            page.goto(server + "/")
            page.wait_for_function("document.getElementById('model-info').textContent.includes('classes')")
            page.fill("#conversation", pasted)
            page.click("#predict")
            page.wait_for_selector("[data-testid=label]")
            labels = page.locator("[data-testid=label]").all_inner_texts()
            bars = page.locator(".utterance").first.locator(".prob").count()
            explained = page.locator(".explanation td.k").all_inner_texts()
            shot = os.environ.get("MERC_SERVE_SCREENSHOT")
            if shot:
                page.screenshot(path=shot, full_page=True)
            page.fill("#conversation", "no colon on this line")
            page.click("#predict")
            page.wait_for_selector("#error:not([hidden])")
            error = page.inner_text("#error")
        finally:
            browser.close()
    assert labels == [r["label"] for r in api["utterances"]]
    assert bars == len(api["labels"])
    assert "top_component" in explained and "kind" in explained  # the explanation dict, rendered generically
    assert "Speaker: text" in error
    assert outside == []  # the page loads nothing from outside the server


# -- inline media ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def visual_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A tiny visual-only model on image-stats features of coloured PNGs, and its images."""
    import numpy as np
    from PIL import Image

    from merc.config import DataConfig, ExperimentConfig, ModelConfig, TrainerConfig
    from merc.data.schema import Dialogue, DialogueDataset
    from merc.training.engine import train_run

    root = tmp_path_factory.mktemp("visual")
    rng = np.random.default_rng(0)
    images = []
    for k in range(6):
        path = root / f"im{k}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        images.append(path)
    dialogues = [Dialogue(f"d{i}", ["A", "B", "A"], labels=np.array([i % 2, 1, 0]),
                          media={"v": [str(images[(i + j) % 6]) for j in range(3)]}) for i in range(12)]
    raw = DialogueDataset("pngs", dialogues, ["calm", "busy"], {"train": [f"d{i}" for i in range(8)],
                          "dev": ["d8", "d9"], "test": ["d10", "d11"]})
    data = extract_features(raw, build_extractors({"v": "image-stats"}), None, use_cache=False, progress=False)
    config = ExperimentConfig(data=DataConfig(dataset="pngs", modalities="v", batch_size=4),
                              model=ModelConfig(method="none", backbone="late_fusion", backbone_options={"hidden": 16}),
                              trainer=TrainerConfig(max_epochs=1, patience=0, progress=False))
    train_run(config, 0, data, root / "model")
    return root / "model", images


def test_inline_media_are_extracted_like_files(visual_model) -> None:
    import base64

    model, images = visual_model
    predictor = Predictor.from_dir(model)
    encoded = [base64.b64encode(p.read_bytes()).decode() for p in images[:3]]
    payload = {"utterances": [{"speaker": s, "media": {"video": e}} for s, e in zip("ABA", encoded)]}
    payload["utterances"][1]["media"]["video"] = "data:image/png;base64," + encoded[1]
    with TestClient(create_app(predictor, "png")) as c:
        res = c.post("/predict", json=payload)
        assert res.status_code == 200, res.text
        want = predictor.predict([{"dialogue_id": "conversation", "speaker": s, "video": str(p)}
                                  for s, p in zip("ABA", images[:3])])
        for got, exp in zip(res.json()["utterances"], want):
            assert got["probabilities"] == pytest.approx(exp["probabilities"], abs=1e-6)
        bad = c.post("/predict", json={"utterances": [{"speaker": "A", "media": {"video": "%%%"}}]}).json()
        assert bad["error"]["code"] == "bad_media" and "base64" in bad["error"]["message"]
        text = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
        odd = c.post("/predict", json={"utterances": [{"speaker": "A", "media": {"video": text}}]}).json()
        assert odd["error"]["code"] == "bad_media" and "png" in odd["error"]["message"]
        partial = {"utterances": [{"speaker": "A", "media": {"video": encoded[0]}}, {"speaker": "B"}]}
        res = c.post("/predict", json=partial)
        assert res.status_code == 422 and "some utterances only" in res.json()["error"]["message"]
