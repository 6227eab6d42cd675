"""The pages' lists in keyset pages: "上一页 / 下一页" links carrying an opaque cursor.

A view asks :func:`keyset_page` for one page of its (scoped, filtered, ordered) query; the template
shows it with the ``pager`` macro of ``_pager.html``, whose links are this request's URL (its filters
kept) with ``cursor`` replaced. A cursor that does not fit the list (edited, cut, from another list)
is a 400 page in the reader's language (:func:`bad_cursor_page`), never a 500. The cursors and the
queries are :func:`app.common.pagination.keyset_pages`'.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext as _

from app.common.errors import InvalidInput
from app.common.pagination import BadPageCursor, Key, KeysetPage, keyset_pages
from app.extensions import db

#: Query-string names a page link drops: the old paging and the download formats.
NOT_KEPT = ("cursor", "page", "format")


__all__ = ["BadPageCursor", "bad_cursor_page", "cursor_arg", "cursor_checked", "keyset_page", "page_url"]


def cursor_arg(name: str = "cursor") -> str | None:
    """This request's cursor of the list whose query-string name is ``name``."""
    value = request.args.get(name) or None
    if value is not None and len(value) > 2000:
        raise BadPageCursor(value[:40], name)
    return value


def keyset_page(query, per_page: int, keys: list[Key] | None = None, name: str = "cursor") -> KeysetPage:
    """The page of ``query`` this request's cursor names (the first page without one); ``name``:
    the cursor's query-string name, for a page with several lists (each pages on its own)."""
    with cursor_checked(name):
        return keyset_pages(db.session(), query, cursor_arg(name), per_page, keys)


@contextmanager
def cursor_checked(name: str = "cursor") -> Iterator[None]:
    """Around a service that reads this request's cursor: its "not a cursor" is the 400 page.
    Only ``cursor`` errors: any other invalid input is the service's own answer."""
    try:
        yield
    except InvalidInput as exc:
        if set(exc.errors or {}) != {"cursor"}:
            raise
        raise BadPageCursor(str(exc), name) from exc


def page_url(cursor: str | None, name: str = "cursor", anchor: str | None = None) -> str:
    """This request's URL with its filters, at the page ``cursor`` names (None: the first page);
    ``name`` is the cursor's query-string name (a page with a second list uses its own)."""
    args = {k: v for k, v in _kept_args().items() if k != name}
    if cursor:
        args[name] = cursor
    return url_for(request.endpoint or "pages.dashboard", **(request.view_args or {}), **args, _anchor=anchor)


def bad_cursor_page(exc: BadPageCursor):
    return render_template(
        "error.html",
        status=400,
        title=_("分页链接无效"),
        detail=_("此分页链接已失效或被改动。请回到列表第一页重新翻页。"),
        first_page=page_url(None, exc.name) if request.endpoint else None,
    ), 400


def _kept_args() -> dict[str, Any]:
    return {k: v for k, v in request.args.to_dict(flat=False).items() if k not in NOT_KEPT}
