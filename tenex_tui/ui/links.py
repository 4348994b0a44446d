"""Finding the links in a message, so they can be listed and opened by keyboard (`o`)."""

from __future__ import annotations

import re

_BARE_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>()\[\]]+")


def extract_links(markdown: str, *, limit: int = 50) -> list[tuple[str, str]]:
    """The links of a Markdown text as (label, target) pairs, in order, deduplicated.

    Every scheme is returned: the caller decides what may open (`core.text.link_target`)
    and says "blocked link" for the rest, so a user can still see where a link pointed.
    """
    from markdown_it import MarkdownIt  # only when the user asks for the links

    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    tokens = MarkdownIt("commonmark").parse(markdown)
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        children = token.children
        for position, child in enumerate(children):
            if child.type != "link_open":
                continue
            href = str(child.attrs.get("href", ""))
            label_parts = []
            for follower in children[position + 1 :]:
                if follower.type == "link_close":
                    break
                label_parts.append(follower.content)
            if href and href not in seen:
                seen.add(href)
                found.append(("".join(label_parts) or href, href))
    for match in _BARE_URL.finditer(markdown):
        url = match.group().rstrip(".,;:!?'\"")
        if url not in seen:
            seen.add(url)
            found.append((url, url))
    return found[:limit]
