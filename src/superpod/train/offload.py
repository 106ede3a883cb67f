"""Training state offloaded to host or pooled memory: optimizer (ZeRO-Offload) and activations.

Closed forms over a memory tier (``superpod.hardware.memory.Tier``, bandwidth per chip with
every chip moving data at once) for one rank's share of a training step.

Optimizer offload (ZeRO-Offload, Ren et al., USENIX ATC'21, https://arxiv.org/abs/2101.06840):
the fp32 master weights, Adam moments and fp32 gradients of the rank's ``P`` parameters live
in host DRAM and the host CPUs run the Adam step. Every step moves the bf16 gradients down
and the updated bf16 weights up, ``X = 2 x 2 P / bandwidth`` (+ latency each way), and the
CPU update streams ``ADAM_BYTES_PER_PARAM x P`` bytes through the chip's share of host DRAM
bandwidth, ``U = 28 P / dram_share``. HBM keeps bf16 weights and a bf16 gradient buffer, so it
frees ``(4 + 12 - 2) P`` bytes. Exposed time:

    serial     : X + U
    overlapped : max(0, X_down - T_bwd) + U + max(0, X_up - T_fwd)
                 (gradients stream out during backward, weights back during the next
                 forward, layer by layer; the CPU step itself is exposed)
    delayed    : the CPU step of step i overlaps step i + 1 (ZeRO-Offload's one-step delayed
                 parameter update): max(0, U - T_fwd - T_bwd) replaces U

Activation offload: each micro-batch's saved activations ``a`` go down in forward and come
back in backward: ``X = 2 m a / bandwidth`` for ``m`` micro-batches a step; overlapped,
``max(0, X - T_compute)`` is exposed. HBM keeps one micro-batch's activations in flight and
frees the rest of the ``held`` ones.

Layer activation offload (Megatron-Core ``cpu_offloading_num_layers``): the saved
activations of ``k`` of the rank's layers go down after their forward and come back before
their backward, every micro-batch, ``X = 2 m k a_layer / bandwidth``, prefetched layer by
layer under the other layers' compute: ``max(0, X - T_compute)`` is exposed. HBM frees
``k a_layer`` of each micro-batch in flight.

Either kind needs the offloaded bytes to fit the chip's share of the tier.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from superpod.hardware.memory import Tier

BF16_BYTES = 2.0
#: bytes a CPU Adam step streams per parameter: read fp32 master, m, v and the bf16 gradient
#: (4 + 4 + 4 + 2), write master, m, v (12) and the bf16 weight (2) - the update of the
#: ZeRO-Offload paper (arXiv 2101.06840 §4) counted in memory traffic
ADAM_BYTES_PER_PARAM = 28.0
#: HBM each parameter stops needing: fp32 grad (4) + optimizer (12) - a bf16 grad buffer (2)
FREED_BYTES_PER_PARAM = 4.0 + 12.0 - 2.0

Overlap = Literal["serial", "overlapped", "delayed"]


@dataclass(frozen=True)
class OffloadCost:
    """One rank's offload in a step (bytes per rank; seconds)."""

    kind: str  #: optimizer | activations
    tier: str
    offloaded_bytes: float  #: held in the tier
    hbm_freed_bytes: float
    transfer_s: float  #: both directions, whole step
    cpu_update_s: float
    exposed_s: float  #: added to the step
    fits: bool  #: the offloaded bytes fit the chip's share of the tier

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(x: float, name: str) -> float:
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be finite and not negative")
    return x


def optimizer_offload(*, params_per_rank: float, tier: Tier, dram_bytes_per_s: float,
                      forward_s: float, backward_s: float, ranks_per_chip: int = 1,
                      overlap: Overlap = "overlapped") -> OffloadCost:
    """ZeRO-Offload of one rank's optimizer state to ``tier`` (module docstring).

    ``dram_bytes_per_s`` is the host DRAM bandwidth the chip's CPU share gets (node DRAM
    bandwidth / chips per node); ranks on one chip share the tier and that bandwidth.
    """
    p = _check(params_per_rank, "params_per_rank")
    _check(forward_s, "forward_s")
    _check(backward_s, "backward_s")
    if dram_bytes_per_s <= 0:
        raise ValueError("dram_bytes_per_s must be > 0")
    r = max(1, ranks_per_chip)
    one_way = p * BF16_BYTES * r  # per chip
    down = tier.transfer_time_s(one_way)
    up = tier.transfer_time_s(one_way)
    update = ADAM_BYTES_PER_PARAM * p * r / dram_bytes_per_s
    if overlap == "serial":
        exposed = down + up + update
    else:
        cpu = update if overlap == "overlapped" else max(0.0, update - forward_s - backward_s)
        exposed = max(0.0, down - backward_s) + cpu + max(0.0, up - forward_s)
    held = (4.0 + 12.0) * p  # fp32 master + Adam (12) and fp32 grads (4) move to the host
    return OffloadCost(kind="optimizer", tier=tier.name, offloaded_bytes=held,
                       hbm_freed_bytes=FREED_BYTES_PER_PARAM * p, transfer_s=down + up,
                       cpu_update_s=update, exposed_s=exposed,
                       fits=held * r <= tier.share_bytes)


def activation_offload(*, activation_bytes_per_microbatch: float, microbatches: int,
                       held_microbatches: float, tier: Tier, compute_s: float,
                       ranks_per_chip: int = 1, overlap: bool = True) -> OffloadCost:
    """Saved activations of each micro-batch offloaded to ``tier`` and fetched back."""
    a = _check(activation_bytes_per_microbatch, "activation_bytes_per_microbatch")
    _check(compute_s, "compute_s")
    if microbatches < 1 or held_microbatches < 1:
        raise ValueError("micro-batches must be >= 1")
    r = max(1, ranks_per_chip)
    each = tier.transfer_time_s(a * r)
    transfer = 2.0 * microbatches * each
    exposed = max(0.0, transfer - compute_s) if overlap else transfer
    offloaded = a * max(0.0, held_microbatches - 1.0)
    return OffloadCost(kind="activations", tier=tier.name, offloaded_bytes=offloaded,
                       hbm_freed_bytes=offloaded, transfer_s=transfer, cpu_update_s=0.0,
                       exposed_s=exposed, fits=offloaded * r <= tier.share_bytes)


def layer_activation_offload(*, layer_bytes: float, layers: int, microbatches: int,
                             held_microbatches: float, tier: Tier, compute_s: float,
                             ranks_per_chip: int = 1) -> OffloadCost:
    """Saved activations of ``layers`` layers (``layer_bytes`` each, one micro-batch) of
    every micro-batch in flight offloaded to ``tier`` and fetched back (module docstring)."""
    a = _check(layer_bytes, "layer_bytes")
    _check(compute_s, "compute_s")
    if layers < 0 or microbatches < 1 or held_microbatches < 1:
        raise ValueError("layers must be >= 0 and micro-batches >= 1")
    r = max(1, ranks_per_chip)
    each = tier.transfer_time_s(a * layers * r) if layers else 0.0
    transfer = 2.0 * microbatches * each
    offloaded = a * layers * held_microbatches
    return OffloadCost(kind="layer activations", tier=tier.name, offloaded_bytes=offloaded,
                       hbm_freed_bytes=offloaded, transfer_s=transfer, cpu_update_s=0.0,
                       exposed_s=max(0.0, transfer - compute_s),
                       fits=offloaded * r <= tier.share_bytes)
