"""Rewrite the README's ``superpod ... --markdown`` tables (``versus``, ``validate``) from
the commands' output.

Run after any change to the model's numbers (tests/test_readme.py checks each table is the
command's current output): ``python scripts/update_readme_tables.py``. A table is the block
right after the command's code fence: blank lines, ``**`` headings, ``|`` table rows and
``- `` list items, up to the next prose line or heading.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from typer.testing import CliRunner

from superpod.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def _is_output(line: str) -> bool:
    return not line.strip() or line.startswith(("**", "|", "- "))


def main() -> int:
    lines = README.read_text().splitlines()
    out: list[str] = []
    i = 0
    changed = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not (line.startswith("superpod ") and "--markdown" in line):
            continue
        while i < len(lines) and lines[i] != "```":  # the rest of the code block
            out.append(lines[i])
            i += 1
        out.append(lines[i])  # closing fence
        i += 1
        j = i
        while j < len(lines) and _is_output(lines[j]):
            j += 1
        r = CliRunner().invoke(app, shlex.split(line)[1:])
        if r.exit_code != 0:
            print(f"failed: {line}\n{r.output}", file=sys.stderr)
            return 1
        new = ["", *r.stdout.strip().splitlines(), ""]
        changed += new != lines[i:j]
        out += new
        i = j
    README.write_text("\n".join(out) + "\n")
    print(f"{changed} table(s) rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
