"""Write ``src/superpod/validation/extra-train.yaml``: the Megatron-Bridge pre-training rows of
two releases that ``public.yaml`` does not hold, as validation cases in its format.

Usage: ``python scripts/mbridge_extra_cases.py ARCHIVE.md``, where ARCHIVE.md is
``docs/performance-summary-archive.md`` of a Megatron-Bridge checkout at commit
``COMMIT`` below. The rows are the vendor's measurements (tokens/s/GPU) of its performance
recipes; the models' shapes are the ones ``public.yaml`` already uses for the same models
(Qwen3-235B-A22B from the catalog). Releases: 25.11 (every system but DGX-H100, whose rows
``public.yaml`` holds, plus its Qwen3-235B row) and 26.04 (every system). Rows of models the
case format cannot state (Nemotron-H hybrids, Kimi K2) are left out.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
COMMIT = "067f987df03b8355b03192d88d70f1709fedf51a"
URL = (f"https://github.com/NVIDIA-NeMo/Megatron-Bridge/blob/{COMMIT}/docs/"
       "performance-summary-archive.md")
PRESETS = {"DGX-GB300": "gb300-nvl72", "DGX-GB200": "gb200-nvl72", "DGX-B300": "hgx-b300",
           "DGX-B200": "dgx-b200", "DGX-H100": "dgx-h100"}
PUBLIC_MODELS = {"LLAMA3_8B": "train-mbridge2511-h100-llama3_8b",
                 "LLAMA3_70B": "train-mbridge2511-h100-llama3_70b",
                 "LLAMA3.1_405B": "train-mbridge2511-h100-llama31_405b",
                 "DeepSeekV3": "train-deepseekv3-671B",
                 "GPT OSS 120B": "train-mbridge2511-h100-gpt-oss",
                 "Qwen3_30B_a3B": "train-mbridge2511-h100-qwen3"}
QWEN3_235B = {"name": "Qwen3-235B-A22B", "hidden_size": 4096, "num_hidden_layers": 94,
              "num_attention_heads": 64, "num_key_value_heads": 4, "head_dim": 128,
              "intermediate_size": 12288, "vocab_size": 151936, "hidden_act": "silu",
              "tie_word_embeddings": False, "n_routed_experts": 128,
              "num_experts_per_tok": 8, "moe_intermediate_size": 1536}
PRECISION = {"BF16": ("bf16", ""), "FP8": ("fp8", " FP8-CS = FP8 with current (per-tensor) "
                                                  "scaling."),
             "FP8-CS": ("fp8", " FP8-CS = FP8 with current (per-tensor) scaling."),
             "MXFP8": ("fp8", " MXFP8 (FP8 with 32-element block scales)."),
             "FP8-MX": ("fp8", " MXFP8 (FP8 with 32-element block scales)."),
             "NVFP4": ("fp4", " NVFP4 (FP4 with 16-element block scales).")}


def _models() -> dict[str, dict[str, Any]]:
    pub = yaml.safe_load((REPO / "src/superpod/validation/public.yaml").read_text())
    out = {name: next(c["model"] for c in pub if c["id"].startswith(prefix))
           for name, prefix in PUBLIC_MODELS.items()}
    out["Qwen3_235B_a22B"] = QWEN3_235B
    return out


def _section(text: str, release: str) -> str:
    start = text.index(f"## {release} NeMo Container")
    end = text.find("\n## ", start + 5)
    return text[start:end if end > 0 else len(text)]


def _rows(body: str) -> list[dict[str, str]]:
    """Table rows of one release as dicts (system, model, gpus, precision, ...)."""
    rows: list[dict[str, str]] = []
    if "#### System:" in body:  # 25.11: one table a system, a model column
        for block in re.split(r"\n#### System: ", body)[1:]:
            system = block.split("\n", 1)[0].strip()
            for line in block.splitlines():
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) != 15 or not line.startswith("| ") or cells[0] == "Model" \
                        or cells[0].startswith("-"):
                    continue
                keys = ("model", "gpus", "precision", "gbs", "mbs", "seq", "fsdp", "tp", "pp",
                        "cp", "vp", "ep", "ga", "tokens", "tflops")
                rows.append({"system": system, **dict(zip(keys, cells, strict=True))})
    else:  # 26.04: one table a model, a system column
        for block in re.split(r"\n#### Model: ", body)[1:]:
            model = block.split("\n", 1)[0].strip()
            for line in block.splitlines():
                if not line.startswith("| DGX"):
                    continue
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                keys = ("system", "gpus", "precision", "gbs", "mbs", "seq", "fsdp", "tp", "pp",
                        "cp", "vp", "ep", "tokens", "tflops")
                rows.append({"model": model, **dict(zip(keys, cells, strict=True))})
    return rows


def _case(row: dict[str, str], release: str, models: dict[str, dict[str, Any]]
          ) -> dict[str, Any] | None:
    label = row["model"]
    name = re.sub(r"\s*\(.*\)", "", label).strip()
    if name not in models:
        return None
    model = copy.deepcopy(models[name])
    if name == "DeepSeekV3":  # the row says whether MTP ran (26.04: the recipe's default 1)
        model["num_nextn_predict_layers"] = 0 if "w/o MTP" in label else 1
    prec_label = row["precision"].split(" ")[0]
    precision, prec_note = PRECISION[prec_label]
    gpus, tp, pp, cp = (int(row[k]) for k in ("gpus", "tp", "pp", "cp"))
    vp = 1 if row["vp"] == "n/a" else int(row["vp"])
    ep = 1 if row["ep"] == "n/a" else int(row["ep"])
    parallel: dict[str, Any] = {"tp": tp, "pp": pp, "vpp": vp, "cp": cp,
                                "dp": gpus // (tp * pp * cp)}
    if ep > 1:
        parallel["ep"] = ep
    if int(row["fsdp"]):
        parallel["zero"] = 3
    parallel.update(micro_batch=int(row["mbs"]), global_batch=int(row["gbs"]),
                    seq_len=int(row["seq"]), precision=precision,
                    framework=f"Megatron-Bridge (NeMo {release} container)")
    tokens = float(row["tokens"].split(" ")[0])
    tflops = row["tflops"].split(" ")[0]
    moe = " MoE: routing force-balanced across experts, dropless." if ep > 1 else ""
    fsdp = " Megatron FSDP over all GPUs." if int(row["fsdp"]) else ""
    slug = re.sub(r"[^a-z0-9]+", "_", f"{name}-{prec_label}".lower()).strip("_")
    chip = row["system"].removeprefix("DGX-").lower()
    return {
        "id": f"train-mbridge{release.replace('.', '')}-{chip}-{slug}-{gpus}gpu",
        "kind": "train",
        "source": (f"NVIDIA-NeMo/Megatron-Bridge docs/performance-summary-archive.md, "
                   f"'{release} NeMo Container' pre-training tables; {URL}"),
        "confidence": "high",
        "system": {"preset": PRESETS[row["system"]], "chips": gpus},
        "model": model,
        "parallel": parallel,
        "measured": {"metric": "tokens_per_s_per_chip", "value": tokens},
        "notes": (f"Vendor recipe on {row['system']}; table also gives {tflops} model "
                  f"TFLOP/s/GPU. DP derived as GPUs/(TP*PP*CP); recompute and optimizer "
                  f"sharding not stated.{fsdp}{prec_note}{moe}"),
    }


def main(archive: str) -> None:
    text = Path(archive).read_text()
    models = _models()
    pub_ids = {c["id"] for c in yaml.safe_load(
        (REPO / "src/superpod/validation/public.yaml").read_text())}
    cases: list[dict[str, Any]] = []
    for release in ("25.11", "26.04"):
        for row in _rows(_section(text, release)):
            if release == "25.11" and row["system"] == "DGX-H100" \
                    and not row["model"].startswith("Qwen3_235B"):
                continue  # public.yaml holds these
            case = _case(row, release, models)
            if case is not None and case["id"] not in pub_ids:
                cases.append(case)
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    header = (
        "# Megatron-Bridge pre-training rows of releases 25.11 and 26.04 that public.yaml does\n"
        "# not hold, in its format (README.md in this directory); written by\n"
        "# scripts/mbridge_extra_cases.py from the vendor's archive table. Kept apart from\n"
        "# public.yaml, a byte-identical copy of the shared file. A check of how the model\n"
        "# carries to other chips (GB300, GB200, B300, B200) and a later release; one source\n"
        "# document, so leave-one-source-out holds them out together. The 25.11 Qwen3-30B-A3B\n"
        "# rows on B200 and H100 ran a release with a dropless-MoE regression its maintainers\n"
        "# acknowledged (Megatron-Bridge issue 1998: 2x slower than 25.09's token-drop runs).\n")
    out = REPO / "src/superpod/validation/extra-train.yaml"
    out.write_text(header + yaml.safe_dump(cases, sort_keys=False, width=100))
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
