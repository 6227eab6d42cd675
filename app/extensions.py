"""Extension singletons, bound to the app in :func:`app.create_app`.

The OpenAPI ``Api`` is not among them: it holds the app's spec, so each app builds its own there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.common.columns import json_dumps
from app.common.wiring import WiredSession

# Stable constraint names so that Alembic revisions are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Request-scoped sessions: objects stay readable after commit, saving a reload per attribute.
# Each carries its app's wiring (app.common.wiring), which the services read from it.
# JSON columns write Decimals (exact masses) as numbers.
# Services take a Session: callers pass ``db.session()``, the current context's session, not the
# ``db.session`` registry (a scoped_session proxy, which is no Session to the type checker).
db = SQLAlchemy(
    model_class=Base,
    session_options={"expire_on_commit": False, "class_": WiredSession},
    engine_options={"json_serializer": json_dumps},
)
if TYPE_CHECKING:
    # The models' base class. mypy cannot take ``db.Model`` (an attribute of an instance) as a base;
    # it is Flask-SQLAlchemy's subclass of ``Base`` (adding ``query`` and the bind key, which the
    # models do not use), so the checker sees ``Base`` and its typed ``Mapped`` columns.
    Model = Base
else:
    Model = db.Model
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
