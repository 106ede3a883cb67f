"""Equal budgets: every system scaled to the first one's chips, power, capex or racks.

The first system is the reference at its product size (or ``--chips``); each other system
gets the largest whole number of its scale-up domains (its building block) whose budget does
not exceed the reference's:

    chips:  n = floor(C_ref / d) x d                    (d: chips per scale-up domain)
    racks:  n = the most whole domains with cabinets(n) <= cabinets_ref
    power:  n = the most whole domains with P_IT,full(n) <= P_IT,full,ref
    capex:  n = the most whole domains with capex(n) <= capex_ref

Power and capex grow with the scale-out fabric (tiers appear as a system grows), so the
count is found by a search over whole domains (bisection on a monotone budget), not a
division. A system without a price cannot be sized by capex: that is infeasible, with the
missing price named, never a price of $0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from superpod.errors import Infeasible
from superpod.hardware.catalog import Catalog
from superpod.hardware.system import System, build_system

BASES = ("chips", "power", "capex", "racks")


def budget_of(system: System, basis: str, cat: Catalog) -> float | Infeasible:
    """What ``system`` spends on ``basis`` (chips, W at full load, USD, cabinets)."""
    if basis == "chips":
        return float(system.counts.chips)
    if basis == "racks":
        return float(system.cabinets)
    if basis == "power":
        return system.power_w
    from superpod.cost.model import capex, default_prices
    from superpod.errors import SpecError

    try:
        cap = capex(system, default_prices(system, cat))
    except SpecError as exc:
        return Infeasible("no_price", f"{system.spec.id}: {exc}")
    if cap.unpriced:
        return Infeasible("no_price", f"{system.spec.id}: no price for "
                                      f"{', '.join(cap.unpriced)}")
    return cap.total_usd


@dataclass(frozen=True)
class Scaled:
    """One system at the reference's budget."""

    system: System
    basis: str | None
    budget: float | None  # the reference's budget on ``basis``
    spent: float | None  # this system's on ``basis``

    def to_dict(self) -> dict[str, object]:
        return {"system": self.system.spec.id, "chips": self.system.counts.chips,
                "basis": self.basis, "reference_budget": self.budget, "budget": self.spent}


def _largest(fits: Callable[[int], bool], hi: int) -> int:
    """The largest k in [1, hi] with fits(k) (fits monotone: true then false); 0 if none."""
    if not fits(1):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def scale_to(ref: System, other_id: str, basis: str, cat: Catalog) -> Scaled | Infeasible:
    """``other_id`` at the largest whole number of its domains within ``ref``'s budget."""
    want = budget_of(ref, basis, cat)
    if isinstance(want, Infeasible):
        return want
    spec = cat.system(other_id)
    d = build_system(spec, cat).counts.chips_per_domain
    if basis == "chips":
        k = int(want) // d
    else:
        def spend(k: int) -> float | Infeasible:
            return budget_of(build_system(spec, cat, k * d), basis, cat)

        first = spend(1)
        if isinstance(first, Infeasible):
            return first
        hi = max(1, int(2 * want / first) + 2)
        k = _largest(lambda k: not isinstance(s := spend(k), Infeasible) and s <= want, hi)
    if k < 1:
        return Infeasible("budget_too_small", f"one {other_id} scale-up domain ({d} chips) "
                                              f"exceeds the reference's {basis} budget")
    sysm = build_system(spec, cat, k * d)
    spent = budget_of(sysm, basis, cat)
    return Scaled(system=sysm, basis=basis, budget=want,
                  spent=None if isinstance(spent, Infeasible) else spent)


def scaled_systems(ids: list[str], basis: str | None, cat: Catalog,
                   chips: int | None = None) -> list[Scaled] | Infeasible:
    """The systems of a comparison: the first at its size, the rest at its budget."""
    ref = build_system(cat.system(ids[0]), cat, chips)
    if basis is None:
        return [Scaled(system=ref, basis=None, budget=None, spent=None),
                *[Scaled(system=build_system(cat.system(i), cat), basis=None, budget=None,
                         spent=None) for i in ids[1:]]]
    want = budget_of(ref, basis, cat)
    if isinstance(want, Infeasible):
        return want
    out = [Scaled(system=ref, basis=basis, budget=want, spent=want)]
    for other in ids[1:]:
        s = scale_to(ref, other, basis, cat)
        if isinstance(s, Infeasible):
            return s
        out.append(s)
    return out
