"""Checkpoints: their size, write, snapshot and restore times, and the interval between them.

Size. Mixed-precision Adam keeps, per parameter, bf16 weights (2 B), fp32 master weights
(4 B) and Adam's first and second moments in fp32 (4 + 4 B): 14 B per parameter
(Micikevicius et al., ICLR 2018; ZeRO, Rajbhandari et al., SC 2020); 16 B if fp32 gradients
or a second weight copy are saved too. Llama 3 405B: 405e9 x 14 B = 5.7 TB.

Times. The checkpoint is sharded evenly over every node (distributed checkpointing), so a
write runs at the tighter of the storage system's aggregate bandwidth (Llama 3's Tectonic
sustained 2 TB/s) and the nodes' own storage bandwidth (nodes x per-node limit):

    t_write = S / min(B_storage, n_nodes x B_node)                        (1)

A synchronous checkpoint blocks training for t_write. An asynchronous one blocks only for
the device-to-host snapshot, t_snap = S / (n_chips x B_d2h), and the write runs behind
training; until it completes the checkpoint is not durable (a lag of t_write), and the next
one cannot start before it ends. Restore reads S back the same way as (1).

Interval. With delta the blocking time and M the job MTBF:

    Young (1974):  T* = sqrt(2 delta M)                                    (2)
    Daly (2006):   T* = sqrt(2 delta M) [1 + (1/3) sqrt(delta / 2M) + (1/9)(delta / 2M)]
                        - delta                 for delta < 2M;  T* = M otherwise   (3)

J. W. Young, "A first order approximation to the optimum checkpoint interval", CACM 17(9),
1974. J. T. Daly, "A higher order estimate of the optimum checkpoint interval for restart
dumps", FGCS 22(3), 2006 (formula (3) as recalled in shared/reference/hardware.md D.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from superpod.errors import SpecError
from superpod.reliability.rates import RateBook, load_rate_book

ADAM_MIXED_PRECISION_BYTES_PER_PARAM = 2 + 4 + 4 + 4  # bf16 w, fp32 master, Adam m, v


@dataclass(frozen=True)
class Storage:
    """Checkpoint storage bandwidths (bytes/s)."""

    write_bytes_per_s: float  # aggregate, the storage system
    read_bytes_per_s: float  # aggregate
    node_bytes_per_s: float  # per node
    snapshot_bytes_per_s: float  # per chip, device to host memory

    def __post_init__(self) -> None:
        for name in ("write_bytes_per_s", "read_bytes_per_s", "node_bytes_per_s",
                     "snapshot_bytes_per_s"):
            v = getattr(self, name)
            if not v > 0 or not math.isfinite(v):
                raise SpecError("must be a positive, finite bandwidth", field=name, value=v)

    @classmethod
    def defaults(cls, book: RateBook | None = None) -> Storage:
        r = (book or load_rate_book()).recovery
        return cls(write_bytes_per_s=r["storage_write_bandwidth"],
                   read_bytes_per_s=r["storage_read_bandwidth"],
                   node_bytes_per_s=r["node_storage_bandwidth"],
                   snapshot_bytes_per_s=r["snapshot_bandwidth"])


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of ``bytes_`` bytes on a given system and storage (seconds)."""

    bytes_: float
    write_s: float
    snapshot_s: float
    restore_s: float
    asynchronous: bool

    @property
    def blocking_s(self) -> float:
        """delta: training time lost to each checkpoint."""
        return self.snapshot_s if self.asynchronous else self.write_s

    @property
    def durable_lag_s(self) -> float:
        """How long after it starts a checkpoint becomes restorable, beyond ``blocking_s``."""
        return self.write_s if self.asynchronous else 0.0


def checkpoint_bytes(params: float,
                     bytes_per_param: float = ADAM_MIXED_PRECISION_BYTES_PER_PARAM) -> float:
    """Model state saved per checkpoint: parameters x bytes per parameter."""
    if not params > 0 or not bytes_per_param > 0:
        raise SpecError("parameters and bytes per parameter must be positive",
                        field="--model-params", value=params)
    return params * bytes_per_param


def write_time_s(nbytes: float, nodes: int, storage: Storage) -> float:
    """Formula (1)."""
    return nbytes / min(storage.write_bytes_per_s, nodes * storage.node_bytes_per_s)


def restore_time_s(nbytes: float, nodes: int, storage: Storage) -> float:
    """Reading the checkpoint back, limited like (1)."""
    return nbytes / min(storage.read_bytes_per_s, nodes * storage.node_bytes_per_s)


def snapshot_time_s(nbytes: float, chips: int, storage: Storage) -> float:
    """Each chip copies its shard to host memory in parallel."""
    return nbytes / (chips * storage.snapshot_bytes_per_s)


def plan_checkpoint(nbytes: float, chips: int, nodes: int, storage: Storage,
                    asynchronous: bool = False) -> Checkpoint:
    """Every time of one checkpoint of ``nbytes`` on ``chips`` chips in ``nodes`` nodes."""
    if not nbytes > 0 or not math.isfinite(nbytes):
        raise SpecError("checkpoint size must be positive", field="--checkpoint-bytes",
                        value=nbytes)
    return Checkpoint(bytes_=nbytes, write_s=write_time_s(nbytes, nodes, storage),
                      snapshot_s=snapshot_time_s(nbytes, chips, storage),
                      restore_s=restore_time_s(nbytes, nodes, storage),
                      asynchronous=asynchronous)


def young_interval_s(delta_s: float, mtbf_s: float) -> float:
    """Formula (2): T* = sqrt(2 delta M)."""
    return math.sqrt(2.0 * delta_s * mtbf_s)


def daly_interval_s(delta_s: float, mtbf_s: float) -> float:
    """Formula (3), Daly's higher-order optimum (compute time between checkpoints)."""
    if delta_s >= 2.0 * mtbf_s:
        return mtbf_s
    x = delta_s / (2.0 * mtbf_s)
    return math.sqrt(2.0 * delta_s * mtbf_s) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta_s


def optimal_interval_s(ckpt: Checkpoint, mtbf_s: float,
                       method: Literal["daly", "young"] = "daly") -> float:
    """The compute time between checkpoints: (3) or (2), never shorter than an async write.

    With no failures (M infinite) there is nothing to protect against: returns inf.
    """
    if math.isinf(mtbf_s):
        return math.inf
    f = daly_interval_s if method == "daly" else young_interval_s
    return max(f(ckpt.blocking_s, mtbf_s), ckpt.durable_lag_s)
