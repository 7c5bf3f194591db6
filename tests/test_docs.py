"""Documentation links stay inside the repository (issue 14, item 9).

Why: a clone, a source archive or the packaged app's docs must not point at files that only
exist beside the developers' checkout (the README once linked the developers' shared DESIGN.md beside the checkout).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# inline links and images: [text](target "title") / ![alt](target); reference definitions: [id]: target
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def markdown_files() -> list[Path]:
    """README.md and every Markdown file git tracks (docs/*.md among them), else all on disk."""
    try:
        out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
        files = [ROOT / line for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        files = []
    on_disk = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return sorted({*files, *on_disk})


def relative_links(text: str) -> list[str]:
    """Link targets of a Markdown text that are not URLs or same-page anchors (code blocks skipped)."""
    text = _FENCE.sub("", text)
    targets = _INLINE.findall(text) + _REFERENCE.findall(text)
    return [t for t in targets if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t) and not t.startswith("#")]


def test_the_link_finder_sees_inline_image_and_reference_links() -> None:
    text = ("[a](docs/A.md) ![b](img/b.png \"title\") [c](https://x.org) [d](#anchor)\n"
            "[`../beside/DESIGN.md`](../beside/DESIGN.md)\n[ref]: ../outside.md\n```\n[e](not/a/link.md)\n```\n")
    assert relative_links(text) == ["docs/A.md", "img/b.png", "../beside/DESIGN.md", "../outside.md"]


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_inside_the_repository(md: Path) -> None:
    bad = []
    for target in relative_links(md.read_text(encoding="utf-8")):
        path = (md.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            bad.append(target)
    assert not bad, f"{md.relative_to(ROOT)} links outside the repository or to missing files: {bad}"


def test_readme_links_the_in_repository_design() -> None:
    assert "docs/DESIGN.md" in relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8").startswith("# ADF Viewer — architecture")
