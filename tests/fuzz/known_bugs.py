"""Server bugs the fuzzer found and that are not fixed yet.

Each has a minimal failing example in ``test_known_bugs.py``, marked ``xfail(strict=True)``.
While a bug is listed here, the strategies in ``strategies.py`` steer clear of the inputs
that trigger it, so the fuzz tests stay green and keep looking for *other* bugs. When a fix
lands, its xfail test passes, which fails the suite (strict): then delete the id here and the
xfail mark there, and the fuzzer covers those inputs again.
"""

from __future__ import annotations

#: POST /graphql with a JSON content type whose body is not UTF-8 (b"\x80"), is JSON but not
#: an object or list (b"null", b"1"), or nests too deeply for ``json.loads`` answers a 500:
#: Strawberry's ``parse_json`` only catches ``JSONDecodeError`` and then calls ``.get`` on
#: whatever it decoded.
UNDECODABLE_BODIES = "undecodable-bodies"
#: A DateTime without an offset ("2026-01-01T00:00:00") in onboardingFunnel's from/to,
#: kpiEvents' filter, or a kpiEvents cursor: comparing or binding it fails (naive vs aware)
#: and the client gets INTERNAL_SERVER_ERROR (kpiEventSeries already answers BAD_USER_INPUT).
NAIVE_DATETIMES = "naive-datetimes"
#: DateTimes near the ends of the representable range (0001-01-01T00:00:00+14:00, a WEEK
#: bucket in 9999-12-31) overflow in series bucketing or cursor decoding: OverflowError,
#: INTERNAL_SERVER_ERROR.
EXTREME_DATETIMES = "extreme-datetimes"
#: Well-encoded cursors with out-of-range parts: analyticsFailures after [2**63] (SQLite) or
#: [2**31] (PostgreSQL int4) or [true]; kpiEvents after [<time>, "not-a-uuid"] on
#: PostgreSQL. The database refuses the bound value: INTERNAL_SERVER_ERROR.
FORGED_CURSORS = "forged-cursors"
#: Strings the database cannot encode or store reach SQL: a lone surrogate in
#: kpiEvents(filter: {userId}) (both engines); NUL in userId, source or kpiIds, and a token
#: whose ``sub`` holds NUL (myOnboardingProgress) on PostgreSQL: INTERNAL_SERVER_ERROR.
UNSTORABLE_STRINGS = "unstorable-strings"
#: An Int literal longer than Python's 4300-digit conversion limit: graphql-core's literal
#: check raises ValueError, reported as a validation error with an ``original_error``, which
#: ``classify`` masks as INTERNAL_SERVER_ERROR instead of GRAPHQL_VALIDATION_FAILED.
HUGE_INT_LITERALS = "huge-int-literals"

#: All of the above are fixed; the cases in ``test_known_bugs.py`` now guard against their
#: return, and the strategies cover those inputs again.
KNOWN_BUGS: frozenset[str] = frozenset()


def known(bug: str) -> bool:
    return bug in KNOWN_BUGS
