"""The console's dataset page shows the characteristic analysis: the IV ranking and each
attribute's bins, computed on the first view and stored with the dataset.
(tests/console/test_browser.py renders the page in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loanrisk.data.characteristics import CHARACTERISTICS, Characteristics
from loanrisk.service import create_app
from loanrisk.settings import Settings

from .conftest import KEYS, SCORE_KEY
from .test_console import log_in


@pytest.fixture
def client(fresh_history: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    settings = Settings(storage=str(fresh_history), nthread=1, binning_max_bins=5)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def test_the_dataset_page_ranks_attributes_by_iv_and_shows_their_bins(
    client: TestClient, fresh_history: Path
) -> None:
    log_in(client, SCORE_KEY)  # reading needs no admin key
    (folder,) = (p.parent for p in fresh_history.glob("data/datasets/*/manifest.json"))
    assert not (folder / CHARACTERISTICS).exists()
    page = client.get(f"/console/datasets/{folder.name}")
    assert page.status_code == 200, page.text
    stored = Characteristics.model_validate_json((folder / CHARACTERISTICS).read_bytes())
    ranking = re.search(r'<table class="numbers" id="iv-ranking">(.*?)</table>', page.text, re.S)
    assert ranking, "no IV ranking"
    shown = re.findall(r'<a href="#bins-([^"]+)">', ranking.group(1))
    assert shown == [r.name for r in stored.ranking]
    for attribute in stored.attributes:
        assert f'id="bins-{attribute.name}"' in page.text
        for b in attribute.bins:
            assert unescape(b.label) in unescape(page.text)
    again = client.get(f"/console/datasets/{folder.name}")  # read back, not refitted
    assert again.status_code == 200
    assert Characteristics.model_validate_json((folder / CHARACTERISTICS).read_bytes()) == stored
