"""``superpod.api``: one function per command, returning what the command prints with
``--json``, with exactly the command's defaults (the commands read them from the API)."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from superpod import api
from superpod.cli import app

runner = CliRunner()

#: API function -> the command path
COMMANDS = {"train": "train", "plan_train": "plan train", "infer": "infer",
            "plan_infer": "plan infer", "serve_sim": "serve-sim", "collective": "collective",
            "reliability": "reliability", "cost": "cost"}
#: CLI parameter names that differ from the API's
RENAMED = {"system_arg": "system"}


def _command(path: str) -> Any:
    cmd: Any = get_command(app)
    for part in path.split():
        cmd = cmd.commands[part]
    return cmd


@pytest.mark.parametrize("fn,path", COMMANDS.items())
def test_command_defaults_are_the_apis(fn: str, path: str) -> None:
    want = api.defaults(getattr(api, fn))
    params = {RENAMED.get(p.name, p.name): p for p in _command(path).params}
    checked = 0
    for name, default in want.items():
        if name in params:
            assert params[name].default == default, f"{path} {name}"
            checked += 1
    assert checked >= len(want) - 1  # every API option is a CLI option (trace: a path)


def test_api_is_typed() -> None:
    for name in api.__all__:
        sig = inspect.signature(getattr(api, name))
        assert sig.return_annotation is not inspect.Signature.empty, name
        assert all(p.annotation is not inspect.Parameter.empty
                   for p in sig.parameters.values()), name


def _cli(argv: list[str], code: int = 0) -> Any:
    r = runner.invoke(app, [*argv, "--json"])
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


def _same(doc: Any) -> Any:
    """As the CLI writes it (JSON), minus wall-clock timings."""
    out = json.loads(json.dumps(doc, default=str))
    drop = {"wall_s"}

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return strip(out)


CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], list[str]]] = [
    ("train", ("dgx-h100", "llama3-70b", 64, 4096), {"tp": 8, "pp": 2, "chips": 64},
     ["train", "-s", "dgx-h100", "-m", "llama3-70b", "--global-batch", "64", "--seq-len",
      "4096", "--tp", "8", "--pp", "2", "--chips", "64"]),
    ("plan_train", ("dgx-h100", "llama3-8b", 16, 2048), {"top": 2},
     ["plan", "train", "-s", "dgx-h100", "-m", "llama3-8b", "--global-batch", "16",
      "--seq-len", "2048", "--top", "2"]),
    ("infer", ("cloudmatrix384", "deepseek-v3"),
     {"phase": "decode", "dp": 320, "ep": 320, "precision": "int8", "batch": 64,
      "input_len": 4096},
     ["infer", "-s", "cloudmatrix384", "-m", "deepseek-v3", "--phase", "decode", "--dp",
      "320", "--ep", "320", "--precision", "int8", "--batch", "64", "--input-len", "4096"]),
    ("plan_infer", ("dgx-h100", "llama3-8b", 50.0), {"top": 2, "disaggregate": False},
     ["plan", "infer", "-s", "dgx-h100", "-m", "llama3-8b", "--slo-tpot-ms", "50", "--top",
      "2", "--no-disaggregate"]),
    ("serve_sim", ("dgx-h100", "llama3-8b"), {"rate": 2.0, "duration": 5.0, "tp": 8},
     ["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--rate", "2", "--duration", "5",
      "--tp", "8"]),
    ("collective", ("gb200-nvl72", "all_reduce"), {"nbytes": "256MiB"},
     ["collective", "-s", "gb200-nvl72", "--op", "all_reduce", "--bytes", "256MiB"]),
    ("topology", ("cloudmatrix384",), {}, ["topology", "cloudmatrix384"]),
    ("reliability", ("dgx-h100",), {"chips": 1024, "model_params": 70e9, "trials": 200},
     ["reliability", "-s", "dgx-h100", "--chips", "1024", "--model-params", "70e9",
      "--trials", "200"]),
    ("cost", ("gb200-nvl72", 170000.0), {"load": 0.4},
     ["cost", "-s", "gb200-nvl72", "--tokens-per-s", "170000", "--load", "0.4"]),
    ("show", ("gb200-nvl72",), {}, ["show", "gb200-nvl72"]),
]


@pytest.mark.parametrize("fn,args,kwargs,argv", CASES, ids=[c[0] for c in CASES])
def test_api_equals_cli_json(fn: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                             argv: list[str]) -> None:
    assert _same(getattr(api, fn)(*args, **kwargs)) == _same(_cli(argv))


def test_validate_equals_cli(few_cases: tuple[Any, Any]) -> None:
    f = few_cases[0]
    assert _same(api.validate(f)) == _same(_cli(["validate", str(f)]))


def test_infeasible_is_a_result_not_an_exception() -> None:
    row = api.train("dgx-h100", "llama3-70b", 8, 4096, chips=8)
    assert api.is_infeasible(row) and row["reason"]
    assert _same(row) == _same(_cli(["train", "-s", "dgx-h100", "-m", "llama3-70b",
                                     "--global-batch", "8", "--seq-len", "4096", "--chips",
                                     "8"], code=1))


def test_bad_input_raises_spec_error() -> None:
    from superpod import SpecError

    with pytest.raises(SpecError, match="--recompute"):
        api.train("dgx-h100", "llama3-8b", 8, 1024, recompute="sometimes")
