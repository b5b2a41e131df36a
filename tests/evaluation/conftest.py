"""Evaluation tests run torch on one thread (see the fixture)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The CI box is shared: two intra-op threads competing with other jobs are ~10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
