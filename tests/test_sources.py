"""Source identity (``source_key``) and held-out sources."""

from __future__ import annotations

import yaml
from hypothesis import given
from hypothesis import strategies as st

from superpod.trust.holdout import excluded, held_out, holding_out
from superpod.trust.sources import source_key


def test_github_blob_urls_ignore_commit_anchor_and_table() -> None:
    a = ("Megatron-LM README (Apr 2021); https://github.com/NVIDIA/Megatron-LM/blob/"
         "50a4b5fa0280a160cc1b03a1c15faddbc1b1da/README.md; table")
    b = ("Megatron-LM README (Jul 2024); https://github.com/NVIDIA/Megatron-LM/blob/"
         "937571cfd49d0194c06123af93e310cd3637cf50/README.md#training-speed; README section")
    assert source_key(a) == source_key(b) == "github.com/nvidia/megatron-lm/readme.md"


def test_different_files_of_one_repository_are_different_sources() -> None:
    h200 = "https://github.com/Azure/AI-benchmarking-guide/blob/7f20e5f/Azure_Results/ND_H200_v5_results.md"
    gb200 = "https://github.com/Azure/AI-benchmarking-guide/blob/2a370be/Azure_Results/ND_GB200_v6_results.md"
    assert source_key(h200) != source_key(gb200)


def test_prose_repository_path_matches_its_url() -> None:
    prose = ("Azure/AI-benchmarking-guide, Azure_Results/ND_H200_v5_results.md, 'GEMM CuBLASLt' "
             "FP8 table, commit 7f20e5fa3b2f9a46d8404af1f6fb14b049d6d5cc")
    url = ("Azure/AI-benchmarking-guide ND_H200_v5_results.md; https://github.com/Azure/"
           "AI-benchmarking-guide/blob/7f20e5fa3b2f9a46d8404af1f6fb14b049d6d5cc/Azure_Results/"
           "ND_H200_v5_results.md; NCCL Bandwidth table")
    assert source_key(prose) == source_key(url)


def test_arxiv_versions_and_pdf_are_one_source() -> None:
    keys = {source_key(s) for s in ("https://arxiv.org/abs/2506.12708",
                                    "https://arxiv.org/pdf/2506.12708v2.pdf",
                                    "Zuo et al., arXiv 2506.12708, Table 3")}
    assert keys == {"arxiv.org/abs/2506.12708"}


def test_issues_and_other_hosts() -> None:
    assert source_key("see https://github.com/NVIDIA/nccl-tests/issues/272; description") \
        == "github.com/nvidia/nccl-tests/issues/272"
    assert source_key("https://www.Example.com/a/b/?x=1#y") == "example.com/a/b"
    assert source_key("our assumption, 2026") == "our assumption"


def test_every_public_case_source_has_a_document_key(public_cases) -> None:  # type: ignore[no-untyped-def]
    for case in yaml.safe_load(public_cases.read_text()):
        key = source_key(case["source"])
        assert key.startswith(("github.com/", "arxiv.org/abs/", "lmsys.org")), (case["id"], key)


@given(st.text(max_size=300))
def test_source_key_is_total_and_stable(text: str) -> None:
    k = source_key(text)
    assert k and k == source_key(text)


def test_holding_out_is_scoped() -> None:
    src = "https://arxiv.org/abs/2412.19437"
    assert not held_out(src) and excluded() == frozenset()
    with holding_out([source_key(src)]):
        assert held_out(src)
        assert not held_out(src, "https://arxiv.org/abs/2407.21783")  # also stated elsewhere
        assert not held_out("https://arxiv.org/abs/2407.21783")
    assert not held_out(src)
