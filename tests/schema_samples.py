"""Real outputs of every command for the JSON Schemas in ``superpod/schemas``: the samples
``tests/test_schemas.py`` validates, and (``python tests/schema_samples.py``) the outputs
the schemas were drafted from. A schema lists every key a record may carry; the drafting
marks as required the keys every sample has.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "src" / "superpod" / "schemas"
H100 = ["-s", "dgx-h100"]
#: a fresh folder for the sweep samples' stores (a store is never overwritten)
SWEEP_DIR = Path(tempfile.mkdtemp(prefix="superpod-schema-"))
TINY = str(REPO / "tests" / "data" / "sweep-tiny.yaml")

#: schema name -> argument lists (each run with --json; exit 0 or 1)
SAMPLES: dict[str, list[list[str]]] = {
    "systems": [["systems"]],
    "chips": [["chips"]],
    "show": [["show", "gb200-nvl72"], ["show", "cloudmatrix384", "--chips", "768"]],
    "compare": [["compare", "atlas-950-superpod", "vr200-nvl144"]],
    "topology": [["topology", "cloudmatrix384"], ["topology", "dgx-h100", "--chips", "64"]],
    "collective": [["collective", "-s", "gb200-nvl72", "--op", "all_reduce", "--bytes", "1GiB"],
                   ["collective", "-s", "hgx-h800", "--chips", "16", "--op", "ep_dispatch",
                    "--tokens", "1024", "--hidden", "7168", "--top-k", "8", "--dtype", "fp8"],
                   ["collective", "-s", "cloudmatrix384", "--chips", "16", "--op",
                    "all_to_all", "--bytes", "16MiB", "--engine", "flow"]],
    "train": [["train", *H100, "-m", "llama3-8b", "--global-batch", "32", "--seq-len", "2048",
               "--tp", "2", "--chips", "16"],
              ["train", *H100, "-m", "llama3-70b", "--global-batch", "8", "--seq-len", "4096"],
              ["train", *H100, "-m", "llama3-8b", "--global-batch", "32", "--seq-len", "2048",
               "--chips", "8", "--framework", "megatron-bridge"]],
    "plan-train": [["plan", "train", *H100, "-m", "llama3-8b", "--global-batch", "16",
                    "--seq-len", "2048", "--top", "2"],
                   ["plan", "train", *H100, "-m", "llama3-70b", "--global-batch", "16",
                    "--seq-len", "4096", "--offload", "auto", "--top", "1"],
                   ["plan", "train", *H100, "-m", "llama3-70b", "--global-batch", "3",
                    "--seq-len", "4096", "--top", "1"],
                   ["plan", "train", *H100, "-m", "llama3-8b", "--global-batch", "16",
                    "--seq-len", "2048", "--top", "1", "--space", "quick", "--framework",
                    "torchtitan"]],
    "infer": [["infer", *H100, "-m", "llama3-8b", "--phase", "decode", "--batch", "16"],
              ["infer", *H100, "-m", "llama3-8b", "--phase", "prefill", "--batch", "4"],
              ["infer", *H100, "--chips", "16", "-m", "llama3-8b", "--prefill-chips", "8",
               "--decode-chips", "8", "--tp", "8"],
              ["infer", *H100, "-m", "llama3-70b", "--batch", "64"],
              ["infer", *H100, "-m", "llama3-70b", "--tp", "8", "--phase", "decode",
               "--batch", "64", "--input-len", "32768", "--kv-spill", "host"],
              ["infer", *H100, "-m", "llama3-70b", "--tp", "8", "--phase", "e2e",
               "--batch", "8", "--weight-offload", "0.5"],
              ["infer", "-s", "cloudmatrix384", "-m", "deepseek-v3", "--phase", "prefill",
               "--chips", "16", "--ep", "32", "--precision", "int8", "--input-len", "4096",
               "--output-len", "1", "--batch", "8", "--prefix-cache-hit", "0.9"],
              ["infer", *H100, "--chips", "16", "-m", "llama3-8b", "--prefill-layout",
               "tp=8", "--decode-layout", "tp=8"]],
    "plan-infer": [["plan", "infer", *H100, "-m", "llama3-8b", "--slo-tpot-ms", "50",
                    "--top", "2", "--prefix-cache-hit", "0.5"],
                   ["plan", "infer", *H100, "-m", "llama3-70b", "--slo-tpot-ms", "0.5",
                    "--top", "1", "--no-disaggregate"]],
    "serve-sim": [["serve-sim", *H100, "-m", "llama3-8b", "--rate", "2", "--duration", "5",
                   "--tp", "8"],
                  ["serve-sim", *H100, "-m", "llama3-8b", "--rate", "2", "--duration", "5",
                   "--tp", "8", "--prefix-cache-hit", "0.5"]],
    "reliability": [["reliability", *H100, "--chips", "1024", "--model-params", "70e9",
                     "--trials", "100"],
                    ["reliability", "-s", "cloudmatrix384", "--checkpoint-bytes", "1TB",
                     "--spares", "64+1", "--trials", "0"]],
    "cost": [["cost", "-s", "gb200-nvl72", "--tokens-per-s", "1e5", "--load", "0.4"]],
    "versus": [["versus", "cloudmatrix384", "gb200-nvl72", "-m", "llama3-70b"]],
    "sweep": [["sweep", TINY, "--workers", "1", "--out", str(SWEEP_DIR / "run.duckdb")],
              ["sweep", TINY, "--workers", "1", "--out", str(SWEEP_DIR / "pareto.duckdb"),
               "--pareto", "tokens_per_s_per_chip,usd_per_million_tokens"]],
    "validate": [["validate", str(REPO / "src/superpod/validation/extra-collectives.yaml")]],
}
#: a valid question that cannot run (train, infer, serve-sim: exit 1)
INFEASIBLE = {"type": "object", "required": ["status", "reason", "detail"],
              "additionalProperties": False,
              "properties": {"status": {"const": "infeasible"}, "reason": {"type": "string"},
                             "detail": {"type": "string"}}}


def run(argv: list[str]) -> Any:
    """The JSON a command prints (in process)."""
    from superpod.cli import app

    r = CliRunner().invoke(app, [*argv, "--json"])
    assert r.exit_code in (0, 1), f"{argv}: {r.output[-500:]}"
    return json.loads(r.stdout)


# ----------------------------------------------------------------------------- drafting

#: keys whose value maps ids / names / precisions to values (not a record of fixed keys)
MAPS = {"peak_flop_per_s", "power_breakdown_w", "power_detail_w", "breakdown_s",
        "memory_breakdown_bytes", "infeasible", "bands", "capex_breakdown_usd", "cells",
        "evidence", "by_kind", "switches_per_tier", "bases", "published", "per_level",
        "cabinets_breakdown", "optical_modules_breakdown", "memory_bytes_per_rank",
        "annual_cost_usd", "recovery_s", "ttft_s", "tpot_s", "e2e_s", "completion_s",
        "layout", "prefill_layout", "plan", "options", "inputs", "chip_figures"}
#: maps whose records are kept as records (their keys are fixed)
RECORD_MAPS = {"layout", "prefill_layout", "plan", "options", "inputs", "annual_cost_usd",
               "recovery_s", "ttft_s", "tpot_s", "e2e_s", "completion_s"}


def _type(x: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string",
            type(None): "null", list: "array", dict: "object"}[type(x)]


def draft(values: list[Any], key: str = "") -> dict[str, Any]:
    """A schema every value fits: records with their keys, maps with their value schema."""
    types = sorted({_type(v) for v in values})
    schema: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    objs = [v for v in values if isinstance(v, dict)]
    if objs and key in MAPS and key not in RECORD_MAPS:
        inner = [v for o in objs for v in o.values()]
        schema["additionalProperties"] = draft(inner) if inner else {}
    elif objs:
        keys = sorted({k for o in objs for k in o})
        schema["properties"] = {k: draft([o[k] for o in objs if k in o], k) for k in keys}
        schema["required"] = [k for k in keys if all(k in o for o in objs)]
        schema["additionalProperties"] = False
    lists = [v for v in values if isinstance(v, list)]
    items = [i for lst in lists for i in lst]
    if lists:
        schema["items"] = draft(items, key) if items else {}
    return schema


def write_drafts() -> None:
    SCHEMAS.mkdir(exist_ok=True)
    for name, argvs in SAMPLES.items():
        docs = [run(a) for a in argvs]
        ok = [d for d in docs if d.get("status") != "infeasible"]
        body: dict[str, Any] = draft(ok)
        if name == "sweep":  # a row also carries its spec's own axes (system.set.<path>...)
            body["properties"]["rows"]["items"]["additionalProperties"] = True
        if name in ("train", "infer", "serve-sim"):
            body = {"anyOf": [body, {"$ref": "#/$defs/infeasible"}],
                    "$defs": {"infeasible": INFEASIBLE}}
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"superpod/{name}.json",
                  "title": f"superpod {name.replace('-', ' ')} --json", **body}
        (SCHEMAS / f"{name}.json").write_text(json.dumps(schema, indent=1) + "\n",
                                               encoding="utf-8")
        print("wrote", name, file=sys.stderr)


if __name__ == "__main__":
    write_drafts()
