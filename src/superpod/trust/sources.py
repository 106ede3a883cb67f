"""Source identity: which document a measurement, a calibration point or a default came from.

Leave-one-source-out validation holds out one *document* at a time: every calibration point,
fitted constant and framework default taken from it, and every validation case measured in
it. A document is a URL or a repository path; the commit, the anchor and the table within the
document do not make another source (two versions of one README are one source).

``source_key`` is the one rule that maps a free-text ``source`` field to that identity:

* the first URL in the text wins: ``github.com/OWNER/REPO/blob/REF/PATH`` (or ``tree``,
  ``raw``, ``raw.githubusercontent.com``) becomes ``github.com/owner/repo/path``; an arXiv
  abstract or PDF becomes ``arxiv.org/abs/ID`` (version dropped); any other URL is host and
  path, without ``www.``, query or fragment;
* with no URL, ``OWNER/REPO ... PATH.ext`` (a repository and a file named in prose) becomes
  ``github.com/owner/repo/path.ext``, and ``arXiv NNNN.NNNNN`` the arXiv key;
* otherwise the text up to its first comma, semicolon or parenthesis, lower-cased.
"""

from __future__ import annotations

import re

_URL = re.compile(r"https?://[^\s;,'\"<>)\]]+")
_GITHUB = re.compile(
    r"^(?:www\.)?github\.com/([^/]+)/([^/]+)(?:/(?:blob|tree|raw)/[^/]+(/.*)?|(/.*))?$")
_RAW = re.compile(r"^raw\.githubusercontent\.com/([^/]+)/([^/]+)/[^/]+(/.*)?$")
_ARXIV = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv[:\s]+)(\d{4}\.\d{4,5})(?:v\d+)?",
                    re.IGNORECASE)
_REPO_PATH = re.compile(r"\b([A-Za-z0-9][\w.-]*/[\w.-]+)[,\s]+(?:[^\s,;]*?\s)?"
                        r"([\w./-]+\.(?:md|rst|txt|png|pdf|html|py|yaml|json))\b")


def _github(owner: str, repo: str, path: str | None) -> str:
    key = f"github.com/{owner}/{repo.removesuffix('.git')}"
    path = (path or "").rstrip("/")
    return (key + path).lower()


def _url_key(url: str) -> str:
    url = url.rstrip(".:")
    bare = re.sub(r"^https?://", "", url).split("#", 1)[0].split("?", 1)[0].rstrip("/")
    m = _ARXIV.search(bare)
    if m and bare.lower().startswith(("arxiv.org", "www.arxiv.org")):
        return f"arxiv.org/abs/{m.group(1)}"
    m = _GITHUB.match(bare)
    if m:
        return _github(m.group(1), m.group(2), m.group(3) or m.group(4))
    m = _RAW.match(bare)
    if m:
        return _github(m.group(1), m.group(2), m.group(3))
    return bare.removeprefix("www.").lower()


def source_key(text: str) -> str:
    """The document a ``source`` text names (module docstring); never empty."""
    m = _URL.search(text)
    if m:
        return _url_key(m.group(0))
    m = _REPO_PATH.search(text)
    if m and "/" in m.group(1):
        owner, repo = m.group(1).split("/", 1)
        return _github(owner, repo, "/" + m.group(2).lstrip("/"))
    m = _ARXIV.search(text)
    if m:
        return f"arxiv.org/abs/{m.group(1)}"
    head = re.split(r"[,;(]", text.strip(), maxsplit=1)[0].strip().lower()
    return head or "unknown"
