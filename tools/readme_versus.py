"""Regenerate the README's `superpod versus` tables (run after a change to the model's
numbers; tests/test_readme.py fails while they are stale).

    .venv/bin/python tools/readme_versus.py

Each ```bash block holding one `superpod versus ... --markdown` line in the README's
"System against system" section is followed by that command's output; this replaces each
output with a fresh one.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from typer.testing import CliRunner

from superpod.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(```bash\n(superpod versus [^\n]*--markdown)\n```\n\n)"
                   r"(.*?)(?=\n\n[^|\n*-]|\Z)", re.S)


def main() -> int:
    text = README.read_text(encoding="utf-8")

    def fresh(m: re.Match[str]) -> str:
        r = CliRunner().invoke(app, shlex.split(m.group(2))[1:])
        if r.exit_code != 0:
            raise SystemExit(f"{m.group(2)}: exit {r.exit_code}\n{r.output}")
        print(f"ran: {m.group(2)}", file=sys.stderr)
        return m.group(1) + r.stdout.strip()

    new = BLOCK.sub(fresh, text)
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
