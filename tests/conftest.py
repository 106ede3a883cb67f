"""Shared fixtures: the built-in catalog and the published validation cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from superpod.hardware.catalog import Catalog, load_catalog

REPO = Path(__file__).resolve().parent.parent
PUBLIC_CASES = REPO.parent / "shared" / "validation" / "public.yaml"


@pytest.fixture(scope="session")
def cat() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def public_cases() -> Path:
    if not PUBLIC_CASES.exists():
        pytest.skip("shared/validation/public.yaml is not beside the checkout")
    return PUBLIC_CASES
