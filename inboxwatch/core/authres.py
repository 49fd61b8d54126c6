"""What our own receiving server found about a message's sender (RFC 8601 headers).

``Authentication-Results: mx.shop.example; spf=pass smtp.mailfrom=forms.example;
dkim=pass header.d=forms.example; dmarc=pass header.from=forms.example``

Anyone can write such a header into a message, so only headers whose authserv-id (the
first word) is one of ours count (``imap.authserv_id`` in the config). A server that
follows RFC 8601 §5 removes incoming headers with its own id; where it does not, a forged
header can only help its writer by claiming a pass, so here a failure in any trusted
header wins over a pass in another. No trusted header: nothing is known (``""``).

Parsing is by hand, in one pass: the header is the sender's text, and a regular
expression over it would be one more place to backtrack.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

SPF_FAILED = frozenset({"fail", "softfail"})
DKIM_FAILED = frozenset({"fail"})


@dataclass(frozen=True)
class Result:
    """One ``method=result`` clause with its properties (``header.from`` -> value)."""

    method: str
    result: str
    props: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str  # lower-cased; "" when the header has none (Microsoft 365 writes so)
    results: tuple[Result, ...]


def _tokens(value: str) -> list[str]:
    """Words, quoted strings (unquoted), "=" and ";"; comments (nested) and folding dropped."""
    out: list[str] = []
    word: list[str] = []
    depth = 0
    i, n = 0, len(value)

    def flush() -> None:
        if word:
            out.append("".join(word))
            word.clear()

    while i < n:
        c = value[i]
        if depth:
            if c == "\\":
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
        elif c == "(":
            flush()
            depth = 1
        elif c == '"':
            flush()
            i += 1
            while i < n and value[i] != '"':
                if value[i] == "\\":
                    i += 1
                if i < n:
                    word.append(value[i])
                i += 1
            out.append("".join(word))
            word.clear()
        elif c in "=;":
            flush()
            out.append(c)
        elif c.isspace():
            flush()
        else:
            word.append(c)
        i += 1
    flush()
    return out


def parse(value: str) -> AuthResults:
    """One header's value; tolerant: what cannot be read is left out."""
    segments: list[list[str]] = [[]]
    for token in _tokens(value):
        if token == ";":
            segments.append([])
        else:
            segments[-1].append(token)
    head = segments[0]
    authserv_id = head[0].lower() if head and "=" not in head[:2] else ""
    clauses = segments[1:] if authserv_id else segments
    results: list[Result] = []
    for tokens in clauses:
        if len(tokens) < 3 or tokens[1] != "=":
            continue  # "none", or not a method=result clause
        method = tokens[0].partition("/")[0].lower()
        props: dict[str, str] = {}
        i = 3
        while i + 2 < len(tokens):
            key, eq, val = tokens[i : i + 3]
            if eq == "=" and "." in key:
                props.setdefault(key.lower(), val.lower())
                i += 3
            else:
                i += 1
        results.append(Result(method, tokens[2].lower(), props))
    return AuthResults(authserv_id, tuple(results))


def trusted(values: Iterable[str], authserv_ids: Collection[str]) -> tuple[AuthResults, ...]:
    """The headers our own server wrote (by authserv-id); none when no id is configured."""
    if not authserv_ids:
        return ()
    parsed = (parse(v) for v in values)
    return tuple(h for h in parsed if h.authserv_id and h.authserv_id in authserv_ids)


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip("<>.").lower()


def _spf(r: Result) -> str:
    """The domain SPF judged: the envelope sender's, else the HELO name."""
    return _domain(r.props.get("smtp.mailfrom") or r.props.get("smtp.helo", ""))


def _dkim(r: Result) -> str:
    """The signing domain (d=), else the domain of the signing identity (i=)."""
    return _domain(r.props.get("header.d") or r.props.get("header.i", ""))


def _aligned(a: str, b: str) -> bool:
    """Same domain, or one inside the other (DMARC's relaxed alignment, roughly)."""
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def failure(headers: Iterable[AuthResults], domain: str) -> str:
    """Why the From ``domain`` failed authentication in these headers; "" if it did not.

    DMARC decides where the header has a result for the domain. Without one, the domain
    failed when neither SPF (of the envelope sender) nor DKIM (of a signature) passed for
    it and at least one of them failed: a forger rarely signs, so "no signature" does not
    count as a pass.
    """
    domain = domain.lower()
    for header in headers:
        dmarc = [
            r
            for r in header.results
            if r.method == "dmarc" and _domain(r.props.get("header.from", domain)) == domain
        ]
        if dmarc:
            if any(r.result == "fail" for r in dmarc):
                return f"dmarc=fail for {domain} (Authentication-Results of {header.authserv_id})"
            continue
        spf = [r for r in header.results if r.method == "spf" and _aligned(_spf(r), domain)]
        dkim = [r for r in header.results if r.method == "dkim" and _aligned(_dkim(r), domain)]
        if any(r.result == "pass" for r in (*spf, *dkim)):
            continue
        failed = [f"spf={r.result}" for r in spf if r.result in SPF_FAILED]
        failed += [f"dkim={r.result}" for r in dkim if r.result in DKIM_FAILED]
        if failed:
            return (
                f"{', '.join(dict.fromkeys(failed))} and no pass for {domain} "
                f"(Authentication-Results of {header.authserv_id})"
            )
    return ""
