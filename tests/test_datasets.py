"""A missing dataset fails the run in CI and only skips elsewhere."""

from __future__ import annotations

import pytest

from conftest import DATASETS, dataset


def test_a_present_dataset_is_its_folder() -> None:
    assert dataset("cranfield") == DATASETS / "cranfield"


def test_a_missing_dataset_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-dataset.*CI is set"):
        dataset("no-such-dataset")


def test_a_missing_dataset_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-dataset.*not found at"):
        dataset("no-such-dataset")
