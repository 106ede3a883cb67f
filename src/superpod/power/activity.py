"""What a running job keeps busy: tensor cores, HBM and links, and their shares of the
package's dynamic power (issue 14, convention 8: power by activity, not by MFU against the
chosen precision's peak).

Shares of the dynamic power (TDP minus the idle floor) at full activity of each part:

    P_m = e_hbm x 8 x B_hbm            (HBM at its full bandwidth B_hbm, bytes/s)
    P_l = e_link x 8 x 2 x B_up        (scale-up SerDes, both directions, B_up one way)
    s_m = P_m / P_dyn,  s_l = P_l / P_dyn,  s_c = 1 - s_m - s_l            (1)

with P_dyn = TDP x (1 - f_idle). Sources and what they rest on:

* e_hbm = 3.9 pJ/bit: HBM2 access and I/O energy, O'Connor et al., "Fine-Grained DRAM:
  Energy-Efficient DRAM for Extreme Bandwidth Systems", MICRO 2017 (Table 1). HBM3/3E are
  of the same order; taken for every generation (assumption).
* e_link = 5 pJ/bit: a long-reach 100-200G electrical SerDes (assumption: recalled, no
  datasheet retrieved; NVLink-C2C's 1.3 pJ/bit, NVIDIA Grace Hopper Superchip whitepaper,
  is the short-reach floor). Optics are a separate group of the system model
  (``../shared/reference/hardware.md`` C.1: one power per module, 15-20 pJ/bit).
* The tensor / vector cores take the rest: a chip running GEMMs back to back reaches its
  TDP at any precision it has a peak for (its FP8 peak is twice its BF16 peak under the same
  power limit), so u_c is the share of time the cores run kernels, whatever the precision.

If HBM and links together exceed ``MAX_IO_SHARE`` of the dynamic power (a low-TDP chip with
a wide memory system), both are scaled down to it, keeping the cores a share.
"""

from __future__ import annotations

from superpod.hardware.specs import Chip

HBM_J_PER_BIT = 3.9e-12
LINK_J_PER_BIT = 5.0e-12
ACCELERATOR_IDLE_FRACTION = 0.30  #: matches ``load.PowerModel`` (its basis there)
MAX_IO_SHARE = 0.6
SOURCES = (
    "HBM 3.9 pJ/bit: O'Connor et al., MICRO 2017 (Fine-Grained DRAM), HBM2",
    "scale-up SerDes 5 pJ/bit: assumption (NVLink-C2C 1.3 pJ/bit, NVIDIA Grace Hopper "
    "whitepaper, is the short-reach floor)",
    "tensor / vector cores: the rest of TDP x (1 - idle fraction)",
)


def component_shares(chip: Chip, idle_fraction: float = ACCELERATOR_IDLE_FRACTION
                     ) -> tuple[float, float, float]:
    """(s_c, s_m, s_l) of formula (1): cores, HBM, links; they add up to 1."""
    dyn_w = chip.power_w * (1.0 - idle_fraction)
    if dyn_w <= 0:
        return (1.0, 0.0, 0.0)
    hbm_w = HBM_J_PER_BIT * 8 * chip.hbm_bandwidth_bytes_per_s
    link_w = LINK_J_PER_BIT * 8 * 2 * chip.scale_up_bandwidth_bytes_per_s
    s_m, s_l = hbm_w / dyn_w, link_w / dyn_w
    if s_m + s_l > MAX_IO_SHARE:
        k = MAX_IO_SHARE / (s_m + s_l)
        s_m, s_l = s_m * k, s_l * k
    return (1.0 - s_m - s_l, s_m, s_l)


def clamp01(x: float) -> float:
    """``x`` limited to [0, 1] (NaN counts as 0)."""
    return min(1.0, max(0.0, x)) if x == x else 0.0
