"""Shared fixtures: the built-in catalog and the published validation cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from superpod.hardware.catalog import Catalog, load_catalog
from superpod.validate.cases import PUBLIC_CASES

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def cat() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def public_cases() -> Path:
    """The packaged copy of ``shared/validation/public.yaml`` (``test_packaged_cases``
    checks it is in sync when the shared folder is beside the checkout)."""
    return PUBLIC_CASES
