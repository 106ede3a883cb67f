"""The system a validation case ran on: its preset at its chip count, with the site's NIC."""

from __future__ import annotations

from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System, build_system
from superpod.validate.cases import Case


def case_system(case: Case, cat: Catalog) -> System:
    """The case's system: its preset at its chip count, with the site's NIC speed if given."""
    spec = cat.system(case.system.preset)
    if case.system.scale_out_gbps is not None:
        so = spec.scale_out.model_copy(
            update={"nic_bandwidth_bits_per_s": case.system.scale_out_gbps * 1e9})
        spec = spec.model_copy(update={"scale_out": so})
    return build_system(spec, cat, case.system.chips)
