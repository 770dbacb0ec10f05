"""Shared fixtures.

``shared_data``: the directory holding the real MELD/EmoryNLP transcripts (``../shared/data``
next to the repository, or ``$MERC_SHARED_DATA``). Tests needing it skip when it is absent —
unless ``MERC_REQUIRE_SHARED_DATA=1`` (set by ``.ci/run``), which turns that skip into a failure.

:func:`require_optional`: tests needing an optional install (the ``fer`` weights, a system
chromium) skip without it — unless ``MERC_REQUIRE_OPTIONAL=1`` (set by ``.ci/run``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("MERC_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if (c / "meld").is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        if os.environ.get("MERC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail("MERC_REQUIRE_SHARED_DATA=1 but ../shared/data (MELD/EmoryNLP CSVs) was not found; "
                        "set MERC_SHARED_DATA to its location")
        pytest.skip("../shared/data (MELD/EmoryNLP transcripts) not available; set MERC_SHARED_DATA")
    return path


def require_optional(available: bool, what: str, fix: str) -> None:
    """Skip the calling test module when ``what`` is not installed, or fail under
    ``MERC_REQUIRE_OPTIONAL=1`` (CI installs everything, so nothing may skip silently there)."""
    if available:
        return
    if os.environ.get("MERC_REQUIRE_OPTIONAL") == "1":
        pytest.fail(f"MERC_REQUIRE_OPTIONAL=1 but {what} is not installed; {fix}", pytrace=False)
    pytest.skip(f"{what} not installed; {fix}", allow_module_level=True)


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach model hubs."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
