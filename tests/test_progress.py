"""The progress bar: drawn only on a terminal without --json, ETA at the mean pace."""

from __future__ import annotations

import io

import pytest

from superpod.progress import Bar, eta_text, wanted


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_draws_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPERPOD_PROGRESS", raising=False)
    tty, pipe = _Tty(), io.StringIO()
    assert wanted(stream=tty) and not wanted(stream=pipe) and not wanted(True, stream=tty)
    with Bar("x", 4, stream=tty) as bar:
        bar.update(4)
    assert "\r" in tty.getvalue() and "4/4" in tty.getvalue()
    with Bar("x", 4, stream=pipe) as bar:
        bar.update(4)
    assert pipe.getvalue() == ""
    monkeypatch.setenv("SUPERPOD_PROGRESS", "0")
    assert not wanted(stream=tty)


def test_eta_is_the_mean_pace() -> None:
    assert eta_text(1, 4, 10.0) == "ETA 30s"
    assert eta_text(2, 4, 130.0) == "ETA 2m10s"
    assert eta_text(0, 4, 5.0) == "" and eta_text(4, 4, 5.0) == ""
