"""The scan page's rendering: its templates compiled once per language with the fixed messages
already translated.

A label scan is the most frequent page, and most of its rendering was the ~45 ``_('…')`` calls
of ``scan.html`` and ``base.html``, each a call through the template context, a catalogue
look-up, ``Markup`` and ``%``-formatting. A message without variables gives the same text every
time in one language, so the page is compiled per language (a Jinja overlay of the app's
environment, kept on the app) with each ``_('literal')`` / ``gettext('literal')`` replaced by its
translation, marked safe exactly as the i18n extension's newstyle gettext marks it (the same
``Markup(message) % {}``). Calls with variables, ``ngettext`` and everything else stay as they
are; the page is the same page, byte for byte (a test compares it with the app's environment).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import current_app, render_template
from flask_babel import get_locale, get_translations
from jinja2 import Environment, pass_context
from jinja2.ext import Extension, _make_new_gettext, _make_new_ngettext
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup

EXTENSION_KEY = "tanxiang.scan_templates"
_GETTEXT_NAMES = frozenset({"_", "gettext"})


class FixedMessages(Extension):
    """Replaces ``_('literal')`` by ``('translation'|safe)`` in the token stream, with the
    translations of the environment's ``fixed_translations`` (set on the overlay)."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        translations = getattr(self.environment, "fixed_translations", None)
        window: list[Token] = []
        previous: Token | None = None
        for token in stream:
            window.append(token)
            if len(window) < 4:
                continue
            name, lparen, string, rparen = window
            shown = None
            if (
                translations is not None
                and name.type == "name"
                and name.value in _GETTEXT_NAMES
                and (previous is None or previous.type != "dot")
                and lparen.type == "lparen"
                and string.type == "string"
                and rparen.type == "rparen"
            ):
                shown = _fixed(translations, string.value)
            if shown is None:
                previous = window.pop(0)
                yield previous
                continue
            line = name.lineno
            yield Token(line, "lparen", "(")
            yield Token(line, "string", shown)
            yield Token(line, "pipe", "|")
            yield Token(line, "name", "safe")
            previous = Token(line, "rparen", ")")
            yield previous
            window.clear()
        yield from window


def _fixed(translations: Any, message: str) -> str | None:
    """What newstyle gettext shows for ``message`` without variables (None: leave the call)."""
    try:
        return str(Markup(translations.ugettext(message)) % {})
    except (TypeError, ValueError, KeyError):  # a stray % in the message: the call stays
        return None


class _Environments:
    def __init__(self) -> None:
        self.by_locale: dict[tuple[str, int], Environment] = {}
        self.lock = threading.Lock()


def _environment(translations: Any) -> Environment:
    """The app's Jinja environment with the fixed messages of ``translations`` (this request's
    catalogue) compiled in."""
    app = current_app
    holder: _Environments | None = app.extensions.get(EXTENSION_KEY)
    if holder is None:
        holder = app.extensions.setdefault(EXTENSION_KEY, _Environments())
    key = (str(get_locale() or ""), id(translations))
    env = holder.by_locale.get(key)
    if env is None:
        with holder.lock:
            env = holder.by_locale.get(key)
            if env is None:
                env = app.jinja_env.overlay(extensions=[FixedMessages], cache_size=50)
                env.fixed_translations = translations  # type: ignore[attr-defined]
                holder.by_locale[key] = env
    return env


def request_gettext(translations: Any = None) -> dict:
    """The template's ``_()`` bound to this request's catalogue once (for the calls left, those
    with variables): Flask-Babel's own looks the catalogue up on every call. Same callables,
    same escaping and formatting as the Jinja i18n extension's (newstyle)."""
    translations = translations if translations is not None else get_translations()
    translate = _make_new_gettext(translations.ugettext)

    @pass_context
    def gettext(__context, __message: str, /, **variables):  # a message may have a variable "message"
        return translate(__context, __message, **variables)

    return {"gettext": gettext, "ngettext": _make_new_ngettext(translations.ungettext)}


def render_page(name: str, **context: Any) -> str:
    """``render_template(name, **context)`` with the fixed messages compiled in (the app's
    context processors and template signals as ``render_template`` runs them)."""
    from flask import templating

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    translations = get_translations()
    template = _environment(translations).get_template(name)
    context.update(request_gettext(translations))
    return templating._render(app, template, context)


def render_page_plainly(name: str, **context: Any) -> str:
    """The same page through the app's own environment (every message translated at render
    time): what :func:`render_page` must equal."""
    context.update(request_gettext())
    return render_template(name, **context)
