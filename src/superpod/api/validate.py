"""``validate``: every published measurement of a case file predicted and compared (the
object ``superpod validate --json`` prints)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def validate(case_file: str | Path | None = None, *, system_files: Sequence[str | Path] = (),
             calibration: str | Path | None = None, cross_validate: bool = False,
             write_bands: str | Path | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Predict each case (default file: the published cases shipped with superpod) and
    report the errors; ``cross_validate`` adds leave-one-source-out errors and bands,
    ``write_bands`` writes those bands (YAML); ``progress(done, total)`` is called as cases
    finish."""
    from superpod.validate.cases import PUBLIC_CASES
    from superpod.validate.runner import validate_file

    return validate_file(str(case_file or PUBLIC_CASES), tuple(str(f) for f in system_files),
                         str(calibration) if calibration else None,
                         cross_validate=cross_validate,
                         write_bands=str(write_bands) if write_bands else None,
                         progress=progress)
