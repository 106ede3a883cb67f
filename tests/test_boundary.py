"""The boundary (issue 14): one test per failure class of hostile input.

Each class names what used to happen (a traceback, a hang, a value silently accepted) and
checks what happens now: one line and exit code 2 for bad input, 1 for infeasible, 3 for an
internal error, strict JSON, the JSON error object with ``--json``.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod.boundary import jsonio
from superpod.boundary.files import MAX_INPUT_BYTES, read_text
from superpod.cli import app
from superpod.errors import SpecError
from superpod.hardware.loading import parse_yaml_text

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()
FIXTURE = [HealthCheck.function_scoped_fixture]
TRAIN = ["train", "--system", "dgx-h100", "--model", "llama3-8b", "--global-batch", "8",
         "--seq-len", "1024", "--tp", "8"]
CHIP = {
    "id": "fz-chip", "name": "Fuzz chip", "vendor": "Me", "year": 2025, "status": "user",
    "evidence": "assumption", "power_evidence": "assumption", "source": "tests",
    "peak_dense": {"bf16": "1 PFLOP/s"}, "hbm_capacity": "80 GB", "hbm_bandwidth": "3 TB/s",
    "scale_up_bandwidth_unidir": "450 GB/s", "power": "700 W"}
CASES = [{
    "id": "broken", "kind": "kernel", "source": "tests", "confidence": "low",
    "system": {"preset": "dgx-h100", "chips": 1},
    "measured": {"metric": "tflops", "value": 600.0},
    "kernel": {"op": "gemm", "m": 4096, "n": 4096, "k": 4096}}, {
    "id": "fine", "kind": "kernel", "source": "tests", "confidence": "low",
    "system": {"preset": "dgx-h100", "chips": 1},
    "measured": {"metric": "tflops", "value": 600.0},
    "kernel": {"op": "gemm", "m": 4096, "n": 4096, "k": 4096}}]


@contextmanager
def guard(seconds: float = 60.0) -> Iterator[None]:
    """A safety net, not a timing: a regression that blocks fails instead of hanging CI."""
    def fire(signum: int, frame: Any) -> None:
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run(args: list[str], code: int, env: dict[str, str] | None = None) -> Any:
    with guard():
        r = runner.invoke(app, args, env=env)
    assert r.exit_code == code, (r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    return r


def bad(args: list[str]) -> str:
    """Bad input: exit 2, one line on stderr."""
    r = run(args, 2)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and r.stdout.strip() == "", r.output
    return str(lines[0])


def bad_file(args: list[str]) -> list[str]:
    """Bad input in a file: exit 2, a line for each of its problems (up to 20), no more."""
    r = run(args, 2)
    lines = r.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 21 and r.stdout.strip() == "", r.output
    assert all(line.startswith("error: ") for line in lines), r.stderr
    return [str(line) for line in lines]


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(p)


def chip_file(tmp_path: Path, **changes: Any) -> str:
    return write(tmp_path, "chip.yaml", yaml.safe_dump({"chips": [{**CHIP, **changes}]}))


def case_results(tmp_path: Path, first: dict[str, Any]) -> dict[str, Any]:
    path = write(tmp_path, "cases.yaml", yaml.safe_dump([first, CASES[1]]))
    r = run(["validate", path, "--json"], 0)
    return {c["id"]: c for c in json.loads(r.stdout)["cases"]}


# ------------------------------------------------------------------ 1. markup


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="[]/abcx =#:", min_size=1, max_size=20))
def test_1_user_text_is_never_read_as_markup(text: str) -> None:
    line = bad(["show", text])
    assert repr(text) in line  # shown as written, brackets and all


def test_1_data_text_is_shown_as_written(tmp_path: Path) -> None:
    path = chip_file(tmp_path, name="[bold]x[/bold] [/y]")
    r = run(["chips", "--system", path, "--json"], 0)
    assert "[bold]x[/bold] [/y]" in r.stdout
    r = run(["chips", "--system", path], 0)
    assert "fz-chip" in r.stdout
    try:
        import torch  # noqa: F401
    except ImportError:
        line = bad(["calibrate", "--chip", "h100-sxm", "--output", str(tmp_path / "c.yaml")])
        assert "superpod[calibrate]" in line


# ------------------------------------------------------------------ 2. YAML structure

YAML_ATTACKS = {
    "complex key": "? [a, b]\n: 1\n",
    "recursive alias": "systems: &a [*a]\n",
    "self alias": "- &s {id: x, extends: *s}\n",
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "deep block nesting": "".join("  " * i + "a:\n" for i in range(200)) + "  " * 200 + "b: 1\n",
    "giant integer": "chips: " + "9" * 5000 + "\n",
    "alias bomb": "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdef", "bcdefg",
                                                                     strict=True)),
    "extends a mapping": "systems:\n  - id: x\n    extends: {}\n",
    "extends a list": "systems:\n  - id: x\n    extends: [a]\n",
}


@pytest.mark.parametrize("text", list(YAML_ATTACKS.values()), ids=list(YAML_ATTACKS))
def test_2_hostile_yaml_is_one_line(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "my.yaml", text)
    line = bad(["chips", "--system", path])
    assert line.startswith("error: ") and "my.yaml" in line


@pytest.mark.parametrize("broken", [{"kind": {"x": 1}}, {"id": {"a": 1}}, {"kind": ["x"]},
                                    {"measured": "fast"}, {"system": None}])
def test_2_a_broken_case_is_that_cases_error_and_the_file_goes_on(
        tmp_path: Path, broken: dict[str, Any]) -> None:
    res = case_results(tmp_path, {**CASES[0], **broken})
    assert res["fine"]["status"] == "ok"
    errs = [c for c in res.values() if c["status"] == "error"]
    assert len(errs) == 1 and errs[0]["reason"]


def test_2_parse_yaml_keeps_ordinary_aliases() -> None:
    assert parse_yaml_text("a: &x 1\nb: *x\nc: [*x, *x]\n", "f") == {"a": 1, "b": 1,
                                                                  "c": [1, 1]}


# ------------------------------------------------------------------ 3. JSON inputs


@pytest.mark.parametrize("content", [b"[" * 100_000 + b"]" * 100_000,
                                     b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
                                     b"\xff\xfe{}", b'{"hidden_size": NaN}',
                                     b'{"num_hidden_layers": 1e999}', b"[]"])
def test_3_hostile_json_is_one_line(tmp_path: Path, content: bytes) -> None:
    cfg = write(tmp_path, "config.json", content)
    assert "config.json" in bad([*TRAIN[:3], "--model", cfg, *TRAIN[5:]])
    trace = write(tmp_path, "trace.json", content)
    assert "trace.json" in bad(["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8",
                                "--trace", trace])


@settings(max_examples=30, deadline=None)
@given(st.recursive(st.none() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=3), kids, max_size=3), max_leaves=20))
def test_3_json_loads_accepts_only_finite_numbers(doc: Any) -> None:
    text = json.dumps(doc)
    try:
        back = jsonio.loads(text, "f")
    except SpecError as exc:
        assert "NaN" in text or "Infinity" in text or "duplicate" in str(exc) or (
            "too large" in str(exc) and any(len(t) > 30 for t in text.split()))
    else:
        assert json.dumps(back, allow_nan=False)  # nothing non-finite came through


# ------------------------------------------------------------------ 4. non-finite, bounds


@pytest.mark.parametrize("value", ["1e308 PB/s", "nan TB/s", "inf TB/s", "1e999 GB/s"])
def test_4_quantities_are_finite_after_scaling(tmp_path: Path, value: str) -> None:
    line = bad(["chips", "--system", chip_file(tmp_path, hbm_bandwidth=value)])
    assert "hbm_bandwidth" in line


@pytest.mark.parametrize("args", [
    ["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--rate", "inf"],
    ["infer", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--context-len", "nan"],
    ["plan", "infer", "-s", "dgx-h100", "-m", "llama3-8b", "--slo-tpot-ms", "1e999"],
    ["cost", "-s", "dgx-h100", "--tokens-per-s", "1000", "--years", "inf"],
    ["cost", "-s", "dgx-h100", "--tokens-per-s", "nan"],
])
def test_4_nan_and_inf_options_are_refused(args: list[str]) -> None:
    line = bad(args)
    assert "finite" in line or "range" in line


@pytest.mark.parametrize("args", [
    ["topology", "dgx-h100", "--chips", "2147483648"],
    ["infer", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--batch", "8", "--mtp",
     "1000000"],
    ["reliability", "-s", "dgx-h100", "--model-params", "8e9", "--trials", "100000000"],
    [*TRAIN[:-2], "--dp", "99999999999"],
    ["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--rate", "1e9"],
])
def test_4_counts_are_bounded(args: list[str]) -> None:
    bad(args)


def test_4_config_layers_and_trace_arrivals_are_bounded(tmp_path: Path) -> None:
    cfg = json.loads((REPO / "examples" / "llama3-8b-config.json").read_text())
    path = write(tmp_path, "config.json", json.dumps({**cfg, "num_hidden_layers": 10**6}))
    assert "num_hidden_layers" in bad([*TRAIN[:3], "--model", path, *TRAIN[5:]])
    trace = write(tmp_path, "t.csv", "input_len,output_len,arrival_s\n10,10,1e20\n")
    assert "arrival_s" in bad(["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8",
                               "--trace", trace])


# ------------------------------------------------------------------ 5. zero divisors

DIVISORS = ["hbm_bandwidth", "hbm_capacity", "scale_up_bandwidth_unidir", "power"]


@settings(max_examples=12, deadline=None, suppress_health_check=FIXTURE)
@given(field=st.sampled_from(DIVISORS), unit=st.sampled_from(["", " "]))
def test_5_zero_where_it_divides_is_refused_at_load(tmp_path: Path, field: str,
                                                    unit: str) -> None:
    value = {"hbm_bandwidth": "0 TB/s", "hbm_capacity": "0 GB", "power": "0 W",
             "scale_up_bandwidth_unidir": "0 GB/s"}[field].replace(" ", unit)
    assert field in bad(["chips", "--system", chip_file(tmp_path, **{field: value})])


def test_5_zero_peak_and_copy_bandwidth_are_refused(tmp_path: Path) -> None:
    line = bad(["chips", "--system", chip_file(tmp_path, peak_dense={"bf16": "0 TFLOP/s"})])
    assert "peak_dense" in line
    cal = write(tmp_path, "cal.yaml", "memcpy:\n  - chip: h100-sxm\n    source: tests\n"
                                      "    evidence: measured\n    copy_bandwidth: 0 TB/s\n")
    cases = write(tmp_path, "cases.yaml", yaml.safe_dump(CASES))
    lines = bad_file(["validate", cases, "--calibration", cal])
    assert "copy_bandwidth" in lines[0] and "must be positive" in lines[0]


# ------------------------------------------------------------------ 6. seeds, dtypes


@pytest.mark.parametrize("args", [
    ["collective", "-s", "dgx-h100", "--op", "all_reduce", "--bytes", "1MiB", "--seed", "-1"],
    ["reliability", "-s", "dgx-h100", "--model-params", "8e9", "--seed", "-3"],
    ["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--rate", "1",
     "--seed", "-1"],
])
def test_6_negative_seeds_are_refused(args: list[str]) -> None:
    assert "--seed" in bad(args)


def test_6_unknown_dtypes_are_refused() -> None:
    line = bad(["collective", "-s", "dgx-h100", "--op", "ep_dispatch", "--ranks", "8",
                "--tokens", "128", "--hidden", "7168", "--top-k", "8", "--dtype", "fp9"])
    assert "--dtype" in line and "bf16" in line


# ------------------------------------------------------------------ 7. output paths


@pytest.mark.parametrize("where", ["dir", "missing", "long", "full"])
def test_7_unwritable_outputs_are_one_line(tmp_path: Path, where: str) -> None:
    path = {"dir": str(tmp_path), "missing": str(tmp_path / "no" / "x.json"),
            "long": str(tmp_path / ("x" * 300)), "full": "/dev/full"}[where]
    if where == "full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    assert "--trace" in bad([*TRAIN, "--trace", path])
    cases = write(tmp_path, "cases.yaml", yaml.safe_dump(CASES))
    assert "--write-bands" in bad(["validate", cases, "--write-bands", path])


# ------------------------------------------------------------------ 8. input paths


@pytest.mark.parametrize("where", ["fifo", "devzero", "dir"])
def test_8_only_regular_files_are_read(tmp_path: Path, where: str) -> None:
    if where == "fifo":
        path = str(tmp_path / "f.yaml")
        os.mkfifo(path)
    else:
        path = {"devzero": "/dev/zero", "dir": str(tmp_path)}[where]
    with guard():
        line = bad(["validate", path])
    assert "regular file" in line or "directory" in line
    with guard(), pytest.raises(SpecError):
        read_text(path)


def test_8_inputs_have_a_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(MAX_INPUT_BYTES + 1)  # sparse: no disk used
    assert "too large" in bad(["chips", "--system", str(big)])


# ------------------------------------------------------------------ 9. one chip resolution


def test_9_a_chip_only_the_user_defines_trains() -> None:
    r = run(["train", "--system", str(REPO / "examples" / "my-npu.yaml"), "--model",
             "llama3-8b", "--global-batch", "8", "--seq-len", "1024", "--tp", "8", "--json"], 0)
    assert 0 < json.loads(r.stdout)["mfu"] < 1


@settings(max_examples=6, deadline=None, suppress_health_check=FIXTURE)
@given(tflops=st.sampled_from([10, 100, 400, 2000, 20000]))
def test_9_a_user_chip_that_reuses_a_catalog_id_is_the_chip_the_gemms_run_on(
        tmp_path: Path, tflops: int) -> None:
    chip = {**CHIP, "id": "h100-sxm", "peak_dense": {"bf16": f"{tflops} TFLOP/s"},
            "hbm_bandwidth": "3.35 TB/s"}
    path = write(tmp_path, "h100.yaml", yaml.safe_dump({"chips": [chip]}))
    r = run(["train", "--system", f"{path}:dgx-h100", *TRAIN[3:], "--json"], 0)
    assert 0 < json.loads(r.stdout)["mfu"] <= 1.0


# ------------------------------------------------------------------ 10. bounded work


def test_10_truncated_exponential_moments_match_the_closed_form() -> None:
    """The normal draw that stands for many failures has the sum's mean and variance."""
    from superpod.reliability.goodput import truncexp_moments

    rng = np.random.default_rng(0)
    for limit, mtbf in ((10.0, 5.0), (1.0, 100.0), (100.0, 1.0)):
        u = rng.random(400_000)
        x = -mtbf * np.log1p(u * math.expm1(-limit / mtbf))
        mean, var = truncexp_moments(limit, mtbf)
        assert mean == pytest.approx(x.mean(), rel=0.01)
        assert var == pytest.approx(x.var(), rel=0.02)
    assert truncexp_moments(1e-9, 1.0) == pytest.approx((5e-10, 1e-18 / 12))


def test_10_many_failures_per_trial_cost_one_draw_per_trial() -> None:
    from superpod.reliability.goodput import _truncexp_sums, truncexp_moments

    counts = np.full(4, 10**9, dtype=np.int64)  # would be 4e9 draws one by one
    sums = _truncexp_sums(np.random.default_rng(0), counts, 10.0, 5.0)
    mean, _ = truncexp_moments(10.0, 5.0)
    assert sums == pytest.approx(counts * mean, rel=1e-3)


def test_10_a_million_chip_reliability_answers() -> None:
    r = run(["reliability", "-s", "dgx-h100", "--chips", "1000000", "--model-params", "405e9",
             "--trials", "200", "--json"], 0)
    doc = json.loads(r.stdout)
    assert doc["monte_carlo"]["ettr"] == pytest.approx(doc["ettr"], rel=0.05)


# ------------------------------------------------------------------ 11. silently accepted


@pytest.mark.parametrize("args", [
    ["collective", "-s", "dgx-h100", "--op", "ep_dispatch", "--ranks", "8", "--tokens", "128",
     "--hidden", "-5", "--top-k", "8"],
    ["collective", "-s", "dgx-h100", "--op", "all_reduce", "--bytes", "1MiB", "--dtype", "fp8"],
    [*TRAIN[:-2], "--dp", "0"],
    ["infer", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--context-len", "0"],
    ["reliability", "-s", "dgx-h100", "--model-params", "8e9", "--storage-bandwidth",
     "0 TB/s"],
])
def test_11_bad_options_are_refused_not_defaulted(args: list[str]) -> None:
    bad(args)


def test_11_bad_file_values_are_refused_not_defaulted(tmp_path: Path) -> None:
    system = (REPO / "examples" / "my-h200-cluster.yaml").read_text().replace(
        "nic_bandwidth: 800 Gb/s", "nic_bandwidth: 0 Gb/s")
    assert "nic_bandwidth" in bad(["show", "--system", write(tmp_path, "s.yaml", system)])
    counted = (REPO / "examples" / "my-npu.yaml").read_text().replace("chips: 8\n",
                                                                       "chips: true\n", 1)
    assert "chips" in bad(["systems", "--system", write(tmp_path, "n.yaml", counted)])
    cfg = json.loads((REPO / "examples" / "llama3-8b-config.json").read_text())
    path = write(tmp_path, "c.json", json.dumps({**cfg, "layer_norm_epsilon": "abc"}))
    assert "layer_norm_epsilon" in bad([*TRAIN[:3], "--model", path, *TRAIN[5:]])
    assert "no cases" in bad(["validate", write(tmp_path, "empty.yaml", "[]\n")])
    assert "list of cases" in bad(["validate", write(tmp_path, "none.yaml", "")])


@pytest.mark.parametrize("measured", [float("nan"), float("inf"), True, -1.0, 0])
def test_11_a_measured_value_is_a_positive_finite_number(tmp_path: Path,
                                                         measured: Any) -> None:
    first = {**CASES[0], "measured": {"metric": "tflops", "value": measured}}
    res = case_results(tmp_path, first)
    assert res["broken"]["status"] == "error" and "value" in res["broken"]["reason"]


def test_11_a_collective_case_without_bytes_is_an_error(tmp_path: Path) -> None:
    first = {**CASES[0], "kind": "collective", "measured": {"metric": "busbw_gbps",
                                                            "value": 300.0},
             "collective": {"op": "all_reduce", "ranks": 8}}
    first.pop("kernel")
    res = case_results(tmp_path, first)
    assert res["broken"]["status"] == "error" and "bytes" in res["broken"]["reason"]


# ------------------------------------------------------------------ 12. exit codes


def test_12_an_internal_error_is_one_line_and_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    from superpod import api

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(api, "show", boom)
    r = run(["show", "dgx-h100"], 3, env={"SUPERPOD_DEBUG": ""})
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "internal error" in line and "report" in line
    r = run(["show", "dgx-h100", "--json"], 3, env={"SUPERPOD_DEBUG": ""})
    assert "internal error" in json.loads(r.stderr)["error"]["message"]
    with guard():
        r = runner.invoke(app, ["show", "dgx-h100"], env={"SUPERPOD_DEBUG": "1"})
    assert isinstance(r.exception, ZeroDivisionError)  # the traceback, when asked for


def test_12_plan_train_with_nothing_feasible_is_infeasible() -> None:
    r = run(["plan", "train", "-s", "dgx-h100", "--chips", "8", "-m", "llama3.1-405b",
             "--global-batch", "8", "--seq-len", "8192", "--json"], 1)
    assert json.loads(r.stdout)["candidates"] == []


def test_12_the_readme_documents_the_exit_codes() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("#### Exit codes", 1)[1].split("####", 1)[0]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "SUPERPOD_DEBUG=1"):
        assert code in section


# ------------------------------------------------------------------ 13. JSON


def test_13_json_output_is_strict() -> None:
    text = jsonio.dumps({"mtbf_s": math.inf, "x": [1.0, math.nan], "ok": 2.5})
    doc = json.loads(text, parse_constant=lambda t: pytest.fail(t))
    assert doc["mtbf_s"] is None and doc["x"] == [1.0, None] and doc["ok"] == 2.5
    assert {d["path"] for d in doc["non_finite"]} == {"mtbf_s", "x[1]"}


def test_13_json_errors_are_the_error_object() -> None:
    for args in (["show", "nope", "--json"], ["show", "dgx-h100", "--chips", "abc", "--json"]):
        r = run(args, 2)
        err = json.loads(r.stderr)["error"]
        assert set(err) == {"message", "file", "field", "value", "allowed"} and err["message"]
        assert r.stdout == ""


def test_13_reruns_are_byte_identical() -> None:
    for args in (["serve-sim", "-s", "dgx-h100", "-m", "llama3-8b", "--tp", "8", "--rate", "2",
                  "--duration", "20", "--input-len", "256", "--output-len", "32", "--json"],
                 ["plan", "infer", "-s", "dgx-h100", "-m", "llama3-8b", "--slo-tpot-ms", "50",
                  "--input-len", "256", "--output-len", "32", "--top", "2", "--json"]):
        first, second = run(args, 0).stdout, run(args, 0).stdout
        assert first == second and "wall_s" not in first


@settings(max_examples=60, deadline=None)
@given(total=st.integers(16, 40_000), cp=st.sampled_from([1, 2, 4, 8, 16, 64]),
       cd=st.sampled_from([1, 2, 8, 32, 144, 320]), rate_p=st.floats(0.01, 1e4),
       rate_d=st.floats(0.01, 1e4))
def test_10_the_pool_split_window_finds_the_exhaustive_best(
        total: int, cp: int, cd: int, rate_p: float, rate_d: float) -> None:
    """Large systems try the splits around the prefill / decode balance only; the best
    split's requests per chip are those of trying every split."""
    from superpod.infer import serving

    def served(split: Any) -> float:
        n_p, n_d = split
        return min(n_p * rate_p, n_d * rate_d) / (n_p * cp + n_d * cd)

    exact = serving._pools(total, cp, cd, rate_p, rate_d, None, None)
    old = serving.POOL_SPLITS_EXACT
    serving.POOL_SPLITS_EXACT = 0
    try:
        windowed = serving._pools(total, cp, cd, rate_p, rate_d, None, None)
    finally:
        serving.POOL_SPLITS_EXACT = old
    if isinstance(exact, tuple):
        assert isinstance(windowed, tuple)
        assert served(windowed) == pytest.approx(served(exact), rel=1e-9)
