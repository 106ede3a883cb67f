"""A hostile user, as reusable Hypothesis strategies, and the judge of what superpod did.

``command_case(name)`` draws an argument list for one ``superpod`` command: a cheap valid
invocation with one or two options (or the positional argument) replaced by a hostile value
(NaN, infinity, negative, zero, huge, a boolean, markup, a directory, a FIFO, ``/dev/zero``,
a missing parent, a name too long) or by a hostile file (YAML and JSON with complex keys,
recursive aliases, deep nesting, giant integers, a mapping where a scalar belongs, non-UTF-8
bytes, a poisoned leaf). Each case says whether superpod must refuse it (exit 2).

``run_case`` runs it in process (Typer's ``CliRunner``) under a time limit and ``judge`` sorts
the outcome into the failure classes of issue 14: ``traceback``, ``exit_code`` (not 0, 1 or
2), ``internal`` (exit 3: an internal error, reported in one line), ``nonstrict_json`` (NaN or
Infinity in ``--json`` output), ``json_error`` (with ``--json``, an error that is not the JSON
error object), ``hang`` (past the limit) and ``silent`` (a value that must be refused, answered).

Used by ``tests/test_fuzz.py`` (a few thousand inputs) and ``bench/bench_fuzz.py`` (the long
run printing the counts).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
import typer.main
import yaml
from hypothesis import strategies as st
from typer.testing import CliRunner

from superpod.cli import app

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: seconds one input may take before it counts as a hang (the cheap bases take < 0.2 s)
TIME_LIMIT_S = 8.0


# ----------------------------------------------------------------------------- files

@dataclass(frozen=True)
class FileArg:
    """A file the harness writes (or a special path it makes) before running the case."""

    kind: str  # "bytes" (content written), "fifo", "dir", "missing", "long", "devzero"...
    content: bytes = b""
    suffix: str = ".yaml"


#: special paths: (kind, must a command refuse it as an input file)
SPECIAL_INPUTS = ("fifo", "dir", "missing", "long", "devzero", "devnull", "root")


def _special(kind: str, suffix: str) -> FileArg:
    return FileArg(kind=kind, suffix=suffix)


SYSTEM_BASE: dict[str, Any] = {
    "chips": [{
        "id": "fz-chip", "name": "Fuzz chip", "vendor": "Me", "year": 2025, "status": "user",
        "evidence": "assumption", "power_evidence": "assumption", "source": "fuzzing",
        "peak_dense": {"bf16": "1 PFLOP/s", "fp8": "2 PFLOP/s"}, "hbm_capacity": "80 GB",
        "hbm_bandwidth": "3 TB/s", "scale_up_bandwidth_unidir": "450 GB/s",
        "scale_out_nic": "400 Gb/s", "power": "700 W"}],
    "systems": [{
        "id": "fz-sys", "name": "Fuzz system", "vendor": "Me", "year": 2025, "status": "user",
        "evidence": "assumption", "source": "fuzzing", "chip": "fz-chip", "chips": 16,
        "node": {"name": "box", "chips": 8, "cpus": {"part": "epyc-9654", "count": 2},
                 "nics": [{"part": "connectx-7", "count": 8}]},
        "scale_up": {"kind": "switched", "protocol": "NVLink", "domain_chips": 8,
                     "latency": "1 us"},
        "scale_out": {"kind": "fat_tree", "protocol": "RoCE", "switch": "roce-51t-switch",
                      "transceiver": "osfp-800g-2xdr4", "nic_transceiver": "osfp-400g-dr4",
                      "nic_bandwidth": "400 Gb/s"},
        "cabinets": {"chips_per_compute_cabinet": 32}}],
}

MODEL_BASE: dict[str, Any] = json.loads(
    (REPO / "examples" / "llama3-8b-config.json").read_text(encoding="utf-8"))
#: the config keys the loader reads (a poisoned shape-neutral key is legitimately ignored)
MODEL_SHAPE_KEYS = ("hidden_size", "intermediate_size", "num_attention_heads",
                    "num_hidden_layers", "num_key_value_heads", "vocab_size",
                    "tie_word_embeddings", "hidden_act")

CASE_BASE: list[dict[str, Any]] = [{
    "id": "fz-gemm", "kind": "kernel", "source": "fuzzing", "confidence": "low",
    "system": {"preset": "dgx-h100", "chips": 1},
    "measured": {"metric": "tflops", "value": 600.0},
    "kernel": {"op": "gemm", "m": 4096, "n": 4096, "k": 4096, "dtype": "bf16"}}, {
    "id": "fz-ar", "kind": "collective", "source": "fuzzing", "confidence": "low",
    "system": {"preset": "dgx-h100", "chips": 8},
    "measured": {"metric": "busbw_gbps", "value": 360.0},
    "collective": {"op": "all_reduce", "bytes": 1 << 28, "ranks": 8}}]

CALIBRATION_TEXT = """\
gemm:
  - chip: h100-sxm
    dtype: bf16
    source: fuzzing
    evidence: measured
    points:
      - {m: 4096, n: 4096, k: 4096, tflops: 600}
      - {m: 8192, n: 8192, k: 8192, tflops: 650}
memcpy:
  - chip: h100-sxm
    source: fuzzing
    evidence: measured
    copy_bandwidth: 2.6 TB/s
"""

TRACE_ROWS = [{"input_len": 512, "output_len": 64, "arrival_s": 0.0},
              {"input_len": 1024, "output_len": 32, "arrival_s": 0.5}]

class Giant:
    """An integer of 5,000 digits, written into a YAML file as digits (Python itself
    refuses to convert one to text)."""

    def __repr__(self) -> str:
        return "Giant(5000 digits)"


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Giant, lambda d, _: d.represent_scalar("tag:yaml.org,2002:int",
                                                               "9" * 5000))


#: poison leaves: values no numeric / quantity / count field may take
POISON: list[Any] = [
    "nan GB/s", "inf TB/s", "-1 W", "1e308 PB/s", "1e999 GB", True, False, None, {}, {"x": 1},
    [], [1, 2], "abc", "[/x]", -1, -5.5, float("nan"), float("inf"), Giant(), 0, "0 GB/s"]
#: leaves that hold free text (markup is fine there: it must be shown, not parsed)
TEXT_KEYS = frozenset({"name", "vendor", "source", "notes", "protocol", "derived_from",
                       "framework", "id", "hbm_type"})


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    if isinstance(obj, dict):
        return {k: _replaced(v, tuple(rest), value) if k == head else v for k, v in obj.items()}
    return [_replaced(v, tuple(rest), value) if i == head else v for i, v in enumerate(obj)]


#: keys whose documented default is "not given": YAML null says exactly that
NULL_IS_DEFAULT = ("nic_transceiver",)  # default: the switch-side transceiver


def poison_must_reject(key: Any, value: Any) -> bool:
    """Must a loader refuse ``value`` at a leaf named ``key``?"""
    if key in TEXT_KEYS and isinstance(value, str):
        return False
    if value is None and key in NULL_IS_DEFAULT:
        return False
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return key not in ("count", "year") and "latency" not in str(key)
    if value == "0 GB/s":
        return True  # wrong unit for most keys; zero bandwidth where it is one
    return True


def _dump_yaml(doc: Any) -> bytes:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False).encode()


#: structural attacks on a YAML file (each must be refused, in one line)
YAML_ATTACKS: list[bytes] = [
    b"? [a, b]\n: 1\n",
    b"systems: &a [*a]\n",
    b"a: &a [*a, *a]\n",
    b"[" * 100_000 + b"]" * 100_000,
    b"{a: " * 20_000 + b"1" + b"}" * 20_000,
    b"chips: " + b"9" * 5000 + b"\n",
    b"\xff\xfe\x00garbage\n",
    b"",
    b"   \n",
    b"- 1\n- 2\n",
    b"systems:\n  - id: x\n    extends: {}\n",
    b"systems:\n  - id: x\n    extends: [a]\n",
    b"systems:\n  - &s {id: x, extends: *s}\n",
    b"chips:\n\t- id: x\n",
    b"id: x\nid: y\n",
    b"!!python/object:os.system 'echo hi'\n",
    b"systems: {}\n",
    b"chips: [1, 2]\n",
    b"\x00" * 100,
]


@st.composite
def system_yaml(draw: st.DrawFn) -> tuple[FileArg, bool]:
    """A hostile system / chip file: a structural attack or the base with a poisoned leaf."""
    if draw(st.integers(0, 3)) == 0:
        return FileArg("bytes", draw(st.sampled_from(YAML_ATTACKS))), True
    leaves = [p for p, _ in _leaves(SYSTEM_BASE)]
    path = draw(st.sampled_from(leaves))
    value = draw(st.sampled_from(POISON))
    doc = _replaced(SYSTEM_BASE, path, value)
    return FileArg("bytes", _dump_yaml(doc)), poison_must_reject(path[-1], value)


JSON_ATTACKS: list[bytes] = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"\xff\xfe{}",
    b"",
    b"[]",
    b"null",
    b'{"hidden_size": 4096',
    b'{"hidden_size": NaN}',
    b'{"num_hidden_layers": 1e999}',
    b'{"hidden_size": 1, "hidden_size": 2}',
    b'"just a string"',
]
JSON_POISON: list[Any] = [
    True, None, {}, [], "abc", "[/x]", -1, 0, 1.5, 10**40, 10_000_000, float("nan"),
    float("inf"), -0.0]


@st.composite
def model_json(draw: st.DrawFn) -> tuple[FileArg, bool]:
    """A hostile Hugging Face ``config.json``."""
    if draw(st.integers(0, 3)) == 0:
        return FileArg("bytes", draw(st.sampled_from(JSON_ATTACKS)), ".json"), True
    key = draw(st.sampled_from(MODEL_SHAPE_KEYS + ("layer_norm_epsilon", "rms_norm_eps")))
    value = draw(st.sampled_from(JSON_POISON))
    doc = {**MODEL_BASE, key: value}
    text = json.dumps(doc).encode()
    reject = True
    if key == "tie_word_embeddings" and isinstance(value, bool):
        reject = False
    if key in ("layer_norm_epsilon", "rms_norm_eps") and not isinstance(value, bool) and \
            isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        reject = False
    if value is None and key not in ("hidden_size", "num_hidden_layers",
                                     "num_attention_heads", "vocab_size"):
        reject = False  # null: the key's default (Hugging Face writes it for MHA's kv heads)
    if value == 10_000_000:
        reject = False  # huge but a model; must be bounded or refused, either is fine
    return FileArg("bytes", text, ".json"), reject


@st.composite
def trace_file(draw: st.DrawFn) -> tuple[FileArg, bool]:
    """A hostile serve-sim trace (CSV or JSON)."""
    if draw(st.booleans()):
        return FileArg("bytes", draw(st.sampled_from(JSON_ATTACKS)), ".json"), True
    col = draw(st.sampled_from(["input_len", "output_len", "arrival_s"]))
    value = draw(st.sampled_from(["nan", "inf", "-1", "0", "1e20", "abc", "true", "",
                                  "1e308", "-inf"]))
    rows = [dict(r) for r in TRACE_ROWS]
    rows[1][col] = value  # type: ignore[assignment]
    if draw(st.booleans()):
        body = "input_len,output_len,arrival_s\n" + "".join(
            f"{r['input_len']},{r['output_len']},{r['arrival_s']}\n" for r in rows)
        return FileArg("bytes", body.encode(), ".csv"), not (col == "arrival_s" and
                                                              value == "0")
    def num(v: Any) -> Any:
        try:
            return json.loads(v) if v not in ("nan", "inf", "-inf") else v
        except ValueError:
            return v
    body = json.dumps([{k: num(str(v)) for k, v in r.items()} for r in rows])
    return FileArg("bytes", body.encode(), ".json"), not (col == "arrival_s" and value == "0")


CASE_POISON: list[Any] = [
    True, None, {}, {"x": 1}, [], "abc", "[/x]", -1, 0, float("nan"), float("inf"),
    Giant(), "fp9"]


@st.composite
def case_file(draw: st.DrawFn) -> tuple[FileArg, bool | str]:
    """A hostile validation case file. Verdict ``"case"``: refused as a whole (exit 2), or
    read with the poisoned case reported as an error and the other case going on."""
    if draw(st.integers(0, 3)) == 0:
        return FileArg("bytes", draw(st.sampled_from(YAML_ATTACKS))), "case"
    leaves = [p for p, _ in _leaves(CASE_BASE) if p[0] == 0 or p[-1] == "bytes"]
    path = draw(st.sampled_from(leaves))
    value = draw(st.sampled_from(CASE_POISON))
    doc = _replaced(CASE_BASE, path, value)
    if path[-1] == "bytes" and draw(st.booleans()):
        doc = [doc[0], {k: v for k, v in doc[1].items()}]
        doc[1]["collective"] = {k: v for k, v in doc[1]["collective"].items() if k != "bytes"}
    verdict: bool | str = "case"
    if path[-1] in TEXT_KEYS and isinstance(value, str):
        verdict = False
    return FileArg("bytes", _dump_yaml(doc)), verdict


@st.composite
def calibration_file(draw: st.DrawFn) -> tuple[FileArg, bool]:
    """A hostile kernel calibration file."""
    if draw(st.integers(0, 3)) == 0:
        return FileArg("bytes", draw(st.sampled_from(YAML_ATTACKS))), True
    base = yaml.safe_load(CALIBRATION_TEXT)
    leaves = [p for p, _ in _leaves(base)]
    path = draw(st.sampled_from(leaves))
    value = draw(st.sampled_from(POISON))
    doc = _replaced(base, path, value)
    return FileArg("bytes", _dump_yaml(doc)), poison_must_reject(path[-1], value)


# ----------------------------------------------------------------------------- options

INT_HOSTILE = ["-1", "0", "nan", "inf", "1e999", "abc", "", "true", "1.5", "-0",
               "2147483648", "99999999999999999999999", "1000000"]
FLOAT_HOSTILE = ["nan", "inf", "-inf", "1e999", "-1", "0", "-0", "abc", "", "true",
                 "1e308", "1e-320", "1e9", "NaN"]
QUANTITY_HOSTILE = ["nan GB", "inf", "-1GB", "0", "1e999GB", "1e308PB/s", "abc", "[/x]", "",
                    "1 parsec", "0 TB/s", "-0 s", "1e308 PB"]
CHOICE_HOSTILE = ["[/x]", "fp9", "", "x" * 5000, "\x00", "[bold]x[/bold]", "ALL_REDUCE"]
ID_HOSTILE = ["[/x]", "nonexistent", "", "x" * 5000, "h100-sxm", "[calibrate]"]

#: integer options where 0 is a real answer (everything else must be >= 1)
ZERO_OK_INT = frozenset({"--mtp", "--fail-links", "--trials", "--zero", "--seed"})
#: float options where 0 is a real answer
ZERO_OK_FLOAT = frozenset({"--utilization", "--load", "--electricity-usd-per-kwh",
                           "--chip-price-usd", "--weight-offload", "--prefix-cache-hit",
                           "--mtp-acceptance"})
QUANTITY_OPTIONS = frozenset({"--bytes", "--checkpoint-bytes", "--storage-bandwidth",
                              "--node-storage-bandwidth", "--interval"})
ZERO_OK_QUANTITY = frozenset({"--bytes"})
ID_OPTIONS = frozenset({"--system", "--model", "--chip"})
#: options whose value is a path to read (the value pool adds hostile files)
INPUT_PATHS = {"--trace": "trace", "--calibration": "calibration"}
OUTPUT_PATHS = frozenset({"--write-bands", "--output", "--report"})
#: options left alone: a free device name, a progress bar
SKIP = frozenset({"--device", "--progress", "--help"})


@dataclass(frozen=True)
class Base:
    """A cheap valid invocation of one command."""

    path: tuple[str, ...]
    args: tuple[str, ...]
    positional: str | None = None  # what the positional argument is: "system", "case"


BASES: dict[str, Base] = {
    "systems": Base(("systems",), ()),
    "chips": Base(("chips",), ()),
    "show": Base(("show",), ("dgx-h100",), "system"),
    "compare": Base(("compare",), ("dgx-h100", "hgx-h800"), "system"),
    "topology": Base(("topology",), ("dgx-h100",), "system"),
    "collective": Base(("collective",), ("--system", "dgx-h100", "--op", "all_reduce",
                                          "--bytes", "1MiB")),
    "collective-ep": Base(("collective",), (
        "--system", "dgx-h100", "--op", "ep_dispatch", "--ranks", "8", "--tokens", "128",
        "--hidden", "7168", "--top-k", "8", "--dtype", "fp8")),
    "train": Base(("train",), ("--system", "dgx-h100", "--model", "llama3-8b",
                               "--global-batch", "8", "--seq-len", "1024", "--tp", "8")),
    "plan train": Base(("plan", "train"), ("--system", "dgx-h100", "--model", "llama3-8b",
                                           "--global-batch", "8", "--seq-len", "1024")),
    "infer": Base(("infer",), ("--system", "dgx-h100", "--model", "llama3-8b", "--tp", "8",
                               "--batch", "8", "--input-len", "512", "--output-len", "64")),
    "plan infer": Base(("plan", "infer"), ("--system", "dgx-h100", "--model", "llama3-8b",
                                           "--slo-tpot-ms", "50", "--input-len", "512",
                                           "--output-len", "64")),
    "serve-sim": Base(("serve-sim",), ("--system", "dgx-h100", "--model", "llama3-8b",
                                       "--tp", "8", "--rate", "1", "--duration", "10",
                                       "--input-len", "512", "--output-len", "64")),
    "reliability": Base(("reliability",), ("--system", "dgx-h100", "--model-params", "8e9",
                                           "--trials", "50")),
    "cost": Base(("cost",), ("--system", "dgx-h100", "--tokens-per-s", "1000")),
    "validate": Base(("validate",), ("<cases>",), "case"),
    "calibrate": Base(("calibrate",), ("--chip", "h100-sxm", "--output", "<out>")),
    "sweep": Base(("sweep",), ("--example",)),
    "versus": Base(("versus",), ("dgx-h100", "hgx-h800", "-m", "llama3-8b", "--train",
                                 "--tokens-per-step", "65536", "--seq-len", "1024"), "system"),
}


@functools.lru_cache(maxsize=1)
def _root() -> Any:
    return typer.main.get_command(app)


def _command(path: tuple[str, ...]) -> Any:
    cmd: Any = _root()
    for part in path:
        cmd = cmd.commands[part]
    return cmd


@functools.lru_cache(maxsize=64)
def options_of(path: tuple[str, ...]) -> dict[str, type]:
    """Every value-taking option of a command, by its long name, with its value type."""
    found: dict[str, type] = {}
    for p in _command(path).params:
        if getattr(p, "is_flag", True) or not p.opts[0].startswith("-"):
            continue
        name = max(p.opts, key=len)
        if name not in SKIP and name != "--json":
            found[name] = p.type_descriptor.annotation
    return found


@dataclass
class Case:
    """One hostile invocation: its arguments and whether it must be refused."""

    command: str
    args: list[str | FileArg]
    must_reject: bool | str  # True: exit 2; "case": a case file's poisoned case errs
    json: bool = True
    notes: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=1024)
def _value_pool(name: str, opt: type, command: str) -> st.SearchStrategy[tuple[Any, bool]]:
    """Hostile values for one option, each with whether it must be refused."""
    if name in INPUT_PATHS and not (command == "train" and name == "--trace"):
        files = trace_file() if INPUT_PATHS[name] == "trace" else calibration_file()
        return st.one_of(files, st.sampled_from(
            [(_special(k, ".csv"), True) for k in SPECIAL_INPUTS]))
    if name in OUTPUT_PATHS:
        return st.sampled_from([(FileArg(k, suffix=".yaml"), True) for k in
                                ("dir", "missing", "long", "devfull", "root")])
    if opt is Path:
        return st.sampled_from([(FileArg(k, suffix=".json"), True) for k in
                                ("dir", "missing", "long", "devfull", "root")])
    if name == "--system":
        return st.one_of(system_yaml(), st.sampled_from(
            [(v, v != "h100-sxm" or True) for v in ID_HOSTILE]
            + [(_special(k, ".yaml"), True) for k in SPECIAL_INPUTS]))
    if name == "--model":
        return st.one_of(model_json(), st.sampled_from(
            [(v, True) for v in ID_HOSTILE]
            + [(_special(k, ".json"), True) for k in SPECIAL_INPUTS]))
    if name in ID_OPTIONS:
        return st.sampled_from([(v, v != "h100-sxm") for v in ID_HOSTILE])
    if name in QUANTITY_OPTIONS:
        return st.sampled_from([(v, not (name in ZERO_OK_QUANTITY and v in ("0", "-0 s")))
                                for v in QUANTITY_HOSTILE])
    if opt is int:
        return st.sampled_from([(v, _int_reject(name, v)) for v in INT_HOSTILE])
    if opt is float:
        return st.sampled_from([(v, _float_reject(name, v)) for v in FLOAT_HOSTILE])
    return st.sampled_from([(v, True) for v in CHOICE_HOSTILE])


def _int_reject(name: str, v: str) -> bool:
    if v in ("2147483648", "99999999999999999999999", "1000000"):
        return False  # huge: refused or answered, but bounded
    if v in ("0", "-0"):
        return name not in ZERO_OK_INT
    return True


def _float_reject(name: str, v: str) -> bool:
    if v in ("1e308", "1e-320", "1e9"):
        return False
    if v in ("0", "-0"):
        return name not in ZERO_OK_FLOAT
    return True


def _set(args: list[str | FileArg], name: str, value: str | FileArg) -> list[str | FileArg]:
    """``args`` with option ``name`` set to ``value`` (replaced, else appended)."""
    out = list(args)
    if name in out:
        i = out.index(name)
        out[i + 1] = value
        return out
    return [*out, name, value]


@st.composite
def command_case(draw: st.DrawFn, command: str) -> Case:
    """One hostile invocation of ``command`` (a key of ``BASES``)."""
    base = BASES[command]
    args: list[str | FileArg] = list(base.args)
    opts = options_of(base.path)
    names = sorted(opts) + (["<positional>"] if base.positional else [])
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    must: bool | str = False
    notes: list[str] = []
    for name in chosen:
        if name == "<positional>":
            if base.positional == "case":
                value, verdict = draw(st.one_of(case_file(), st.sampled_from(
                    [(_special(k, ".yaml"), True) for k in SPECIAL_INPUTS])))
            else:
                value, verdict = draw(st.one_of(
                    st.sampled_from([(v, True) for v in ID_HOSTILE if v != "h100-sxm"]),
                ))
            args[0] = value
        else:
            value, verdict = draw(_value_pool(name, opts[name], command))
            args = _set(args, name, value)
        notes.append(f"{name}={value!r:.80}")
        if verdict is True or (verdict == "case" and must is False):
            must = verdict if must is not True else True
    if base.positional == "case" and isinstance(args[0], str) and args[0] == "<cases>":
        args[0] = FileArg("bytes", _dump_yaml(CASE_BASE))
    as_json = draw(st.integers(0, 4)) > 0
    return Case(command, args, must, as_json, notes)


def any_case() -> st.SearchStrategy[Case]:
    """A hostile invocation of any command."""
    return st.one_of(*[command_case(c) for c in sorted(BASES) if _exists(BASES[c].path)])


def _exists(path: tuple[str, ...]) -> bool:
    """Whether this CLI has the command (the bench also runs against older checkouts)."""
    try:
        _command(path)
    except KeyError:
        return False
    return True


# ----------------------------------------------------------------------------- running

class Hang(BaseException):
    """Raised by the alarm when an input runs past the time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Outcome:
    """What one run did."""

    exit_code: int | None
    stdout: str
    stderr: str
    exception: BaseException | None
    hang: bool


class Workspace:
    """A temporary folder where hostile files and special paths are made."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="superpod-fuzz-")
        self.root = Path(self._tmp.name)
        self.n = 0
        (self.root / "adir.yaml").mkdir()
        os.mkfifo(self.root / "fifo.yaml")
        os.mkfifo(self.root / "fifo.json")
        os.mkfifo(self.root / "fifo.csv")

    def path(self, f: FileArg) -> str:
        self.n += 1
        special = {
            "fifo": str(self.root / f"fifo{f.suffix}"),
            "dir": str(self.root / "adir.yaml") if f.suffix == ".yaml" else str(self.root),
            "missing": str(self.root / "no" / "such" / f"file{f.suffix}"),
            "long": str(self.root / ("x" * 300 + f.suffix)),
            "devzero": "/dev/zero",
            "devnull": "/dev/null",
            "devfull": "/dev/full",
            "root": "/",
        }
        if f.kind in special:
            return special[f.kind]
        if f.kind == "out":
            return str(self.root / f"out{self.n}{f.suffix}")
        p = self.root / f"in{self.n}{f.suffix}"
        p.write_bytes(f.content)
        return str(p)

    def close(self) -> None:
        self._tmp.cleanup()


class _CachedRunner(CliRunner):
    """Typer's runner, on the click command built once (Typer rebuilds the whole command
    tree on every call, which would be most of a rejected input's time)."""

    def invoke(self, app: Any, *args: Any, **kwargs: Any) -> Any:
        import typer.testing as testing

        old = testing._get_command
        testing._get_command = lambda _app: _root()  # type: ignore[assignment]
        try:
            return super().invoke(app, *args, **kwargs)
        finally:
            testing._get_command = old


runner = _CachedRunner()


def argv(case: Case, ws: Workspace) -> list[str]:
    """The case's argument list with its files made."""
    words = list(BASES[case.command].path)
    for a in case.args:
        if a == "<out>":
            words.append(ws.path(FileArg("out")))
        elif isinstance(a, FileArg):
            words.append(ws.path(a))
        else:
            words.append(a)
    if case.json and case.command != "calibrate":
        words.append("--json")
    return words


def run_case(case: Case, ws: Workspace, limit_s: float = TIME_LIMIT_S) -> Outcome:
    """Run one case in process under a time limit."""
    words = argv(case, ws)
    try:
        with time_limit(limit_s):
            r = runner.invoke(app, words, env={"SUPERPOD_DEBUG": ""})
    except Hang:
        return Outcome(None, "", "", None, True)
    exc = r.exception if not isinstance(r.exception, SystemExit) else None
    return Outcome(r.exit_code, r.stdout, _stderr(r), exc, False)


def _stderr(r: Any) -> str:
    try:
        return str(r.stderr)
    except ValueError:
        return ""


def _strict_json(text: str) -> bool:
    def bad(token: str) -> Any:
        raise ValueError(token)

    try:
        json.loads(text, parse_constant=bad)
    except ValueError:
        return False
    return True


def judge(case: Case, o: Outcome) -> list[str]:
    """The failure classes one outcome falls in (empty: it behaved)."""
    if o.hang:
        return ["hang"]
    found: list[str] = []
    text = ANSI.sub("", o.stdout + o.stderr)
    if o.exception is not None or "Traceback" in text:
        found.append("traceback")
    elif o.exit_code == 3:
        found.append("internal")
    elif o.exit_code not in (0, 1, 2):
        found.append("exit_code")
    if case.json and o.exit_code in (0, 1) and o.stdout.strip() and \
            not _strict_json(o.stdout):
        found.append("nonstrict_json")
    if case.json and o.exit_code == 2 and case.command != "calibrate" and \
            not _json_error(o.stderr):
        found.append("json_error")
    if case.must_reject is True and o.exit_code in (0, 1) and o.exception is None:
        found.append("silent")
    if case.must_reject == "case" and o.exit_code in (0, 1) and case.json and \
            not _case_errored(o.stdout):
        found.append("silent")
    return found


def _json_error(text: str) -> bool:
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict) and \
        "message" in doc["error"]


def _case_errored(stdout: str) -> bool:
    """A validate --json output reports the poisoned first case as an error (or the file
    as a whole), and the second case still ran."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return False
    cases = doc.get("cases", []) if isinstance(doc, dict) else []
    by_id = {c.get("id"): c for c in cases if isinstance(c, dict)}
    errs = [c for c in cases if isinstance(c, dict) and c.get("status") == "error"]
    return bool(errs) and any(k in by_id for k in ("fz-ar",)) or bool(errs)


def tally(cases: list[Case], ws: Workspace, limit_s: float = TIME_LIMIT_S,
          on_failure: Callable[[Case, Outcome, list[str]], None] | None = None
          ) -> Counter[str]:
    """Run every case and count the failure classes (and the runs)."""
    counts: Counter[str] = Counter()
    for case in cases:
        o = run_case(case, ws, limit_s)
        counts["runs"] += 1
        counts[f"exit {o.exit_code}"] += 1
        for cls in judge(case, o):
            counts[cls] += 1
            if on_failure:
                on_failure(case, o, judge(case, o))
    return counts
