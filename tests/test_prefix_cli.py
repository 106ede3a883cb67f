"""``infer`` / ``plan infer`` with --prefix-cache-hit: the closed form carried through."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from superpod.cli import app

runner = CliRunner()
BASE = ["infer", "-s", "dgx-h100", "-m", "llama3-8b", "--input-len", "4096",
        "--output-len", "1", "--phase", "prefill", "--batch", "8", "--json"]


def run(args: list[str]) -> dict:  # type: ignore[type-arg]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_prefill_scales_by_one_minus_h_plus_the_transfer_from_host() -> None:
    plain = run(BASE)
    hit = run([*BASE, "--prefix-cache-hit", "0.75"])
    pc = hit["prefix_cache"]
    t = plain["ttft_s"]
    it = plain["iterations"][0]
    a = it["breakdown_s"]["attention_compute"]
    assert pc["uncached_ttft_s"] == pytest.approx(t)
    # no caching measurement for H100: f = 1; (1 - h)(T - A) + (1 - h^2) A
    assert pc["compute_s"] == pytest.approx(0.25 * (t - a) + (1 - 0.75**2) * a)
    # llama3-8b: 8 KV heads x 128 x 2 (K, V) x 32 layers x 2 B = 131,072 B a token, tp 1;
    # batch 8 over dp 8: one sequence a GPU; 0.75 x 4096 tokens over PCIe 5.0 x16 (64 GB/s)
    nbytes = 0.75 * 4096 * 131_072
    assert pc["cached_bytes_per_chip"] == pytest.approx(nbytes)
    assert pc["transfer_s"] == pytest.approx(2e-6 + nbytes / 64e9)
    assert hit["ttft_s"] == pytest.approx(pc["compute_s"] + pc["transfer_s"])
    assert hit["ttft_s"] >= pc["transfer_s"]
    assert hit["tokens_per_s"] == pytest.approx(plain["tokens_per_s"] * t / hit["ttft_s"])


def test_hbm_tier_costs_no_transfer_and_e2e_tpot_improves() -> None:
    hbm = run([*BASE, "--prefix-cache-hit", "0.5", "--prefix-cache-tier", "hbm"])
    assert hbm["prefix_cache"]["transfer_s"] == 0.0
    e2e = [a if a != "prefill" else "e2e" for a in BASE]
    e2e[e2e.index("--output-len") + 1] = "256"
    plain, hit = run(e2e), run([*e2e, "--prefix-cache-hit", "0.5"])
    assert hit["ttft_s"] < plain["ttft_s"]
    assert hit["tpot_s"] < plain["tpot_s"]
    assert hit["tokens_per_s"] > plain["tokens_per_s"]
    assert math.isclose(hit["breakdown_s"]["prefill"],
                        plain["breakdown_s"]["prefill"] * hit["prefix_cache"]["ttft_s"]
                        / hit["prefix_cache"]["uncached_ttft_s"], rel_tol=1e-9)


def test_decode_alone_is_unchanged() -> None:
    args = [a if a != "prefill" else "decode" for a in BASE]
    plain, hit = run(args), run([*args, "--prefix-cache-hit", "0.5"])
    assert hit["tpot_s"] == plain["tpot_s"]
    assert hit["prefix_cache"]["applied"] is False


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "nan", "inf"])
def test_bad_hit_ratio_is_one_line_exit_2(value: str) -> None:
    r = runner.invoke(app, [*BASE, "--prefix-cache-hit", value])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_a_tier_the_system_lacks_is_bad_input() -> None:
    r = runner.invoke(app, [*BASE, "--prefix-cache-hit", "0.5", "--prefix-cache-tier", "pool"])
    assert r.exit_code == 2 and "pool" in r.output
    r = runner.invoke(app, [*BASE, "--prefix-cache-tier", "host"])
    assert r.exit_code == 2


def test_plan_infer_applies_the_cache_to_its_candidates() -> None:
    doc = run(["plan", "infer", "-s", "dgx-h100", "-m", "llama3-8b", "--slo-tpot-ms", "50",
               "--top", "1", "--prefix-cache-hit", "0.5", "--json"])
    c = doc["candidates"][0]
    assert c["prefix_cache"]["applied"]
    assert c["ttft_s"] < c["prefix_cache"]["uncached_ttft_s"] + 1e-12
