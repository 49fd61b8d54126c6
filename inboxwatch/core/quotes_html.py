"""HTML-only replies: quote containers marked as quoted text before conversion.

Gmail, Outlook, Apple Mail, Thunderbird, Yahoo and Zimbra each wrap the history in their
own container (a ``<blockquote>``, a ``div`` with a known class or border style); their
text becomes "> " lines, so :mod:`inboxwatch.core.quotes` treats HTML-only mail exactly
as plain text. Every pattern here stays linear on hostile input.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from inboxwatch.core.message import html_to_text

#: Do these lines (the text before a bare <blockquote>) end in an attribution ("On ...
#: wrote:")? The plain-text rules of :mod:`inboxwatch.core.quotes` answer it.
Attribution = Callable[[list[str]], bool]

# Unclosed comments and <pre> run to the end, as in browsers (and keeps these linear).
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
# HTML whitespace collapses, except in <pre>; html_to_text would keep source newlines.
_HTML_SPACE = re.compile(r"(<pre\b.*?(?:</pre\s*>|\Z))|\s+", re.S | re.I)
# Start of a tag that may open a quote, with its attributes (up to the next "<" or ">", so
# the scan stays linear on hostile input); which kind it is is told by substrings below.
_HTML_CANDIDATE = re.compile(r"<(div|span|blockquote|pre|hr)\b([^<>]*)", re.I)
# Containers whose element holds the quote (cut as one balanced element) ...
_BLOCK_MARKS = (
    "gmail_quote",  # Gmail: attribution + blockquote
    "gmail_extra",  # older Gmail
    "gmail_signature",  # Gmail signature and its "-- " prefix span
    "yahoo_quoted",
    "moz-cite-prefix",  # Thunderbird attribution, before <blockquote type="cite">
    "moz-forward-container",
    "moz-signature",
    "protonmail_quote",
    "__quoted_text__",  # Zimbra data-marker
)
# ... and markers after which everything is quoted history (Outlook, new Outlook, Zimbra).
_REST_MARKS = (
    "divrplyfwdmsg",
    "appendonsend",
    "olk_src_body_section",
    "mail-editor-reference-message-container",
    "zwchr",
    "__divider__",
    "__headers__",
)
# Gmail's "indent" button also makes a blockquote, with border:none: that is not a quote.
_INDENT = re.compile(r"border\s*:\s*none", re.I)


def _quote_kind(tag: str, attrs: str) -> str:
    """Whether a candidate tag opens a quote element ("block"), starts the quoted rest
    of the mail ("rest"), is a blockquote with no quote marking ("bare"), or neither ("")."""
    attrs = attrs.lower()
    if any(mark in attrs for mark in _REST_MARKS):
        return "rest"
    if any(mark in attrs for mark in _BLOCK_MARKS):
        return "block"
    if tag.lower() == "blockquote" and not _INDENT.search(attrs):
        return "block" if _CITE.search(attrs) or "quote" in attrs else "bare"
    return ""


# Mail clients mark the blockquote of a reply (type="cite": Apple Mail, Thunderbird,
# Roundcube, iOS; a "...quote" class: Gmail, Proton, Tutanota) or put an attribution
# right before it. A bare <blockquote> with neither is content: a marketplace or shop
# notification quoting the customer's message, or a person quoting a passage.
_CITE = re.compile(r"\btype\s*=\s*[\"']?cite\b|\bcite\s*=")
_BARE_CONTEXT = 600  # characters before a bare blockquote searched for an attribution


def _after_attribution(html: str, start: int, pos: int, ends_in_attribution: Attribution) -> bool:
    """Whether the text just before ``start`` (not before ``pos``) ends in an attribution."""
    text = _html_text(html[max(pos, start - _BARE_CONTEXT) : start])
    return ends_in_attribution([line for line in text.splitlines() if line.strip()])


_TAG_START = re.compile(r"<(/?)([a-zA-Z][\w:-]*)")


def _element_end(html: str, start: int) -> int:
    """End of the element opened at ``start``, counting nested tags of the same name.

    Only tag starts are matched, so the scan is linear whatever the attributes hold."""
    opener = _TAG_START.match(html, start)
    name = opener.group(2).lower() if opener else ""
    depth = 0
    for m in _TAG_START.finditer(html, start):
        if m.group(2).lower() != name:
            continue
        depth += -1 if m.group(1) else 1
        if depth == 0:
            close = html.find(">", m.end())
            return len(html) if close < 0 else close + 1
    return len(html)


def _html_text(fragment: str) -> str:
    return "\n".join(line.strip() for line in html_to_text(fragment).splitlines())


def html_as_plain(html: str, ends_in_attribution: Attribution) -> str:
    """The HTML as plain text, with quote containers' text marked "> " line by line."""
    html = _HTML_SPACE.sub(lambda m: m.group(1) or " ", _COMMENT.sub("", html))
    parts: list[str] = []
    pos = 0
    for m in _HTML_CANDIDATE.finditer(html):
        kind = _quote_kind(m.group(1), m.group(2))
        if m.start() < pos or not kind:
            continue
        if kind == "bare" and not _after_attribution(html, m.start(), pos, ends_in_attribution):
            continue
        end = len(html) if kind == "rest" else _element_end(html, m.start())
        parts.append(_html_text(html[pos : m.start()]))
        quoted = _html_text(html[m.start() : end])
        parts.append("\n".join(f"> {line}" for line in quoted.splitlines()))
        pos = end
    parts.append(_html_text(html[pos:]))
    return "\n".join(p for p in parts if p)
