"""Links between the docs land on a heading that exists: moving a section (as the
integrators' one moved from events.md to integrators.md) cannot leave a link dangling."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([\w./-]*\.md|)#([\w-]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in HEADING.findall(text)
    }


def test_every_anchor_link_between_docs_lands_on_a_heading() -> None:
    pages = [
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "README.md",
        ROOT / "examples" / "README.md",
    ]
    dangling: list[str] = []
    for page in pages:
        for target, anchor in LINK.findall(page.read_text(encoding="utf-8")):
            linked = (page.parent / target) if target else page
            if not linked.is_file() or anchor not in anchors(linked):
                dangling.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert not dangling, "\n".join(dangling)
