"""The hidden fields every page form carries, and what the person typed without them.

One definition for the page views (app/web/form_tokens.py renders the fields), the carrier's
page in app/ledger/verify_pages.py and the idempotency keys (app/common/idempotency.py).
"""

from __future__ import annotations

from collections.abc import Mapping

IDEMPOTENCY_FIELD = "idempotency_key"
TOKEN_FIELDS = frozenset({"csrf", "csrf_token", IDEMPOTENCY_FIELD})


def user_fields(form: Mapping[str, str]) -> dict[str, str]:
    """What the person typed: the non-empty fields of a posted form, without the hidden tokens."""
    return {k: v for k, v in form.items() if v.strip() and k not in TOKEN_FIELDS}
