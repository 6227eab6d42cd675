"""The hidden fields every page form carries: ``{{ form_tokens() }}`` in a template.

* ``csrf_token``: Flask-WTF's token (the form is this site's);
* ``idempotency_key``: a fresh random key per rendered form, so a double tap or a resent form
  is one action (the server keeps the first result per key; see app/common/idempotency.py).
"""

from __future__ import annotations

import uuid

from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from app.common.forms import IDEMPOTENCY_FIELD, TOKEN_FIELDS, user_fields

__all__ = ["IDEMPOTENCY_FIELD", "TOKEN_FIELDS", "form_tokens", "user_fields"]


def form_tokens() -> Markup:
    return Markup(
        '<input type="hidden" name="csrf_token" value="{}"><input type="hidden" name="{}" value="{}">'
    ).format(escape(generate_csrf()), IDEMPOTENCY_FIELD, uuid.uuid4().hex)
