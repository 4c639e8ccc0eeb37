from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "shared: needs ../shared/data beside the repository")


requires_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data not present")
