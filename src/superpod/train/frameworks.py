"""Training frameworks: what a named framework does that changes a prediction.

A validation case names its ``framework`` in free text; the profile it maps to sets the
layout choices that framework makes, applied to every case that names it (never per case):

* torchtitan: PyTorch SDPA (FlashAttention-2 on Hopper); its "selective" activation
  checkpointing is PyTorch op-level checkpointing (every other matmul recomputed, recompute
  mode ``op``); AsyncTP pipelines TP collectives with the GEMMs;
* Megatron-LM as of 2019-2021 predates FlashAttention (Dao et al. 2022) and materialises the
  score matrix (``unfused``);
* Megatron-Core ``--tp-comm-overlap`` and NeMo's performance recipes: Transformer Engine
  userbuffers pipeline TP collectives with the GEMMs; cuDNN fused attention (the best
  calibrated kernel, ``auto``);
* "DualPipe" (DeepSeek-V3's HAI-LLM): the DualPipe schedule, when the case gives none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainFramework:
    """Layout choices a framework makes (``TrainPlan`` fields)."""

    attention_kernel: str = "auto"
    tp_comm_overlap: bool = False
    op_level_selective: bool = False  #: its "selective" recompute is ``op``
    dualpipe: bool = False

    def recompute(self, stated: str) -> str:
        return "op" if stated == "selective" and self.op_level_selective else stated

    def schedule(self, stated: str | None, vpp: int) -> str:
        return stated or ("dualpipe" if self.dualpipe else
                          "interleaved" if vpp > 1 else "1f1b")


def framework_for(text: str) -> TrainFramework:
    """The profile of a case's free-text ``framework`` (module docstring)."""
    fw = text.lower()
    torchtitan = "torchtitan" in fw
    kernel = ("fa2" if torchtitan else
              "unfused" if re.search(r"\b20(19|20|21)\b", fw) else "auto")
    return TrainFramework(
        attention_kernel=kernel,
        tp_comm_overlap="tp-comm-overlap" in fw or "asynctp" in fw or "nemo" in fw,
        op_level_selective=torchtitan, dualpipe="dualpipe" in fw)
