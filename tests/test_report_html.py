"""Self-contained HTML reports: escaping, size, plots present; rendered in a real browser
(headless Chromium) when it is installed."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from superpod.cli import app
from superpod.errors import SpecError
from superpod.report import html as h
from superpod.report.html_views import pareto

runner = CliRunner()

COMMANDS = {
    "versus": ["versus", "atlas-950-superpod", "gb200-nvl72", "--model", "llama3-8b",
               "--chips", "144", "--equal", "chips"],
    "plan-train": ["plan", "train", "--system", "dgx-h100", "--model", "llama3-8b",
                   "--global-batch", "64", "--seq-len", "2048", "--top", "3"],
    "plan-infer": ["plan", "infer", "--system", "dgx-h100", "--model", "llama3-8b",
                   "--slo-tpot-ms", "30", "--input-len", "512", "--output-len", "128"],
    "serve-sim": ["serve-sim", "--system", "dgx-h100", "--model", "llama3-8b", "--rate", "5",
                  "--duration", "10", "--tp", "8"],
    "validate": ["validate"],
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out: dict[str, Path] = {}
    d = tmp_path_factory.mktemp("reports")
    for name, args in COMMANDS.items():
        path = d / f"{name}.html"
        r = runner.invoke(app, [*args, "--report", str(path)])
        assert r.exit_code == 0, (name, r.output)
        out[name] = path
    return out


def test_user_text_is_escaped() -> None:
    rep = h.Report("<script>alert(1)</script> & co").add(
        h.Table("t</table>", ["<b>"], [["<img src=x onerror=alert(1)>"]]),
        h.Figure("f\"><x", "<i>title</i>", {"data": [{"type": "bar", "name": "</script>",
                                                      "x": ["a"], "y": [1]}]}),
        h.Lines("l", ["<svg onload=alert(1)>"]))
    page = h.render(rep, js="/* plotly */")
    assert "<script>alert" not in page and "<img" not in page and "<svg" not in page
    assert "<b>" not in page and "<i>" not in page
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert all("</script" not in s for s in scripts)
    assert page.count("<script>") == 2  # plotly.js, one figure


def test_script_json_has_no_markup_and_no_nan() -> None:
    assert "<" not in h.script_json({"a": "</script><!--"})
    with pytest.raises(ValueError):
        h.script_json({"a": float("nan")})


def test_pareto_front() -> None:
    pts = [(10.0, 100.0), (20.0, 90.0), (20.0, 300.0), (5.0, 50.0), (30.0, 250.0)]
    assert pareto(pts) == [(5.0, 50.0), (10.0, 100.0), (20.0, 300.0)]


def test_unwritable_report_path_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="--report"):
        h.write_report(tmp_path / "missing" / "r.html", h.Report("x"))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_report_is_self_contained_and_small(reports: dict[str, Path], name: str) -> None:
    page = reports[name].read_text(encoding="utf-8")
    assert reports[name].stat().st_size < h.MAX_BYTES
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", page)
    assert page.count('class="plot"') >= 1


# ----------------------------------------------------------------------------- browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=2000", "--window-size=1200,1600"]


def _png_distinct_bytes(path: Path) -> int:
    """How many distinct byte values the decoded image rows hold (1 or 2: a blank page)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed here (CI installs "
                                             "Debian's chromium: .ci/run)")
@pytest.mark.parametrize("name", list(COMMANDS))
def test_report_renders_in_chromium(reports: dict[str, Path], name: str,
                                    tmp_path: Path) -> None:
    assert CHROMIUM is not None
    url = reports[name].resolve().as_uri()
    shot = tmp_path / "shot.png"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--screenshot={shot}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"})
    expected = reports[name].read_text(encoding="utf-8").count('class="plot"')
    assert expected >= 1
    assert dom.stdout.count('class="plot js-plotly-plot"') == expected  # every plot drew
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    assert not [ln for ln in console if re.search(r"error|uncaught", ln, re.I)], console
    assert _png_distinct_bytes(shot) > 16  # text, bars and axes, not a blank page
