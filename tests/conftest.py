"""Shared fixtures: offline settings for every test, the fake upstream, the running gateway."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import pytest  # noqa: E402

from tests.support.upstream import FakeUpstream  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PORTCULLIS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow tier: set PORTCULLIS_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def upstream_server() -> FakeUpstream:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server: FakeUpstream) -> FakeUpstream:
    upstream_server.reset()
    yield upstream_server
    upstream_server.reset()
