"""The hidden fields every page form carries: ``{{ form_tokens() }}`` in a template.

* ``csrf_token``: Flask-WTF's token (the form is this site's);
* ``idempotency_key``: a fresh random key per rendered form, so a double tap or a resent form
  is one action (the server keeps the first result per key; see app/common/idempotency.py).
"""

from __future__ import annotations

import uuid

from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

IDEMPOTENCY_FIELD = "idempotency_key"


def form_tokens() -> Markup:
    return Markup(
        '<input type="hidden" name="csrf_token" value="{}"><input type="hidden" name="{}" value="{}">'
    ).format(escape(generate_csrf()), IDEMPOTENCY_FIELD, uuid.uuid4().hex)


TOKEN_FIELDS = frozenset({"csrf", "csrf_token", IDEMPOTENCY_FIELD})


def user_fields(form) -> dict[str, str]:
    """What the person typed: the non-empty fields of a posted form, without the hidden tokens."""
    return {k: v for k, v in form.items() if v.strip() and k not in TOKEN_FIELDS}
