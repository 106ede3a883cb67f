"""The grid shape of a scale-up domain (numpy-free: the step model's placement reads it, and
``superpod train`` should not pay for the fabric builder's imports)."""

from __future__ import annotations

from superpod.hardware.system import System


def domain_dims(system: System, size: int) -> list[int]:
    """Grid dims of a (possibly partial) domain: the leading dims of the spec that divide
    ``size``, then what remains as one more dimension (a line when nothing divides)."""
    dims, prod = [], 1
    for d in system.spec.scale_up.dims:
        if size % (prod * d):
            break
        dims.append(d)
        prod *= d
    if size // prod > 1:
        dims.append(size // prod)
    return dims or [size]
