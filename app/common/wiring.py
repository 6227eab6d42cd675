"""The app's wiring: which rule files, which cross-domain hooks, which password hashing.

Nothing here is process-wide state. :func:`build_wiring` is the ONE place where the domains are
plugged into each other (the ledger and regeneration fill hooks, the telemetry and ledger colour
fact providers and colour checks); :func:`app.create_app` calls it once and keeps the result on
``app.extensions["tanxiang.wiring"]``. Two apps in one process therefore each have their own.

Services stay Flask-free: they read the wiring from the session they are given,
``wiring_of(session)``. ``db.session`` is a :class:`WiredSession`, which copies the current app's
wiring into ``session.info`` when Flask-SQLAlchemy creates it (once per app context). A session
made any other way (a script's ``Session(engine)``) gets the default wiring the first time it is
asked, built by the same function from an empty configuration, so a fill recorded from a script
that imports only ``app.boxes.services`` still writes its ledger record.

Rule files are read through their loaders' caches, keyed by the file's path and modification time
and holding parsed values only: two apps with different ``RULES_DIR`` folders get different
entries, and a regulator's edit of a rule file is picked up without a restart.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from flask import current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession

if TYPE_CHECKING:  # pragma: no cover
    from app.boxes.colour import Check, RuleSet
    from app.demo.context import DemoExtension
    from app.demo.generate import GenerateExtension, GeneratePart
    from app.jobs.kinds import ExportKind, JobKind

EXTENSION_KEY = "tanxiang.wiring"
_SHIPPED_COLOUR_RULES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "colour_rules.yaml"
)
SESSION_KEY = "tanxiang.wiring"
DEFAULT_PASSWORD_HASH_METHOD = "scrypt"  # werkzeug's default; tests lower the cost through config


@dataclass(frozen=True)
class Wiring:
    rules_dir: str | None
    # fill validators(session, box, data, actor) raise InvalidInput before a fill is stored;
    # fill hooks(session, fill, actor) run after it is flushed.
    fill_validators: tuple[Callable[..., None], ...]
    fill_hooks: tuple[Callable[..., None], ...]
    # provider(session, boxes, facts_by_box_id, now) adds facts for the colour engine.
    fact_providers: tuple[Callable[..., None], ...]
    # rule code → check(facts, params) -> Finding | None: what each colour rule's code runs.
    colour_checks: Mapping[str, Check] = field(default_factory=lambda: colour_checks())
    password_hash_method: str = DEFAULT_PASSWORD_HASH_METHOD
    audit: bool = True  # the audit trail records this app's sessions' changes (app.audit.recorder)
    # hook(session), called by the transaction boundary (app.common.tx): on a request's session
    # just before it commits, and on a CLI command's session when its transaction begins (the
    # audit trail's who and which interface). The boundary knows no domain: these are the app's.
    before_request_commit: tuple[Callable[..., None], ...] = ()
    cli_transaction_begins: tuple[Callable[..., None], ...] = ()
    # Jobs (app/jobs): the kinds a job may be of, and the exports the ``export`` kind runs, by
    # name; hook(session, principal) when a job's transaction begins (the audit trail's who).
    job_kinds: Mapping[str, JobKind] = field(default_factory=lambda: MappingProxyType({}))
    job_exports: Mapping[str, ExportKind] = field(default_factory=lambda: MappingProxyType({}))
    job_transaction_begins: tuple[Callable[..., None], ...] = ()
    # request(kind, params) -> (job id, outcome when it ran in this process, else None): how a
    # domain's command (``boxes sweep --queue``) asks for a job without importing app.jobs.
    cli_job_request: Callable[[str, dict[str, Any]], tuple[int, str | None]] | None = None
    # hook(session, box), called when a box is registered (after it is flushed): telemetry's
    # sensor state, so that a box's first reading costs what every other one does.
    box_registered: tuple[Callable[..., None], ...] = ()

    # The rule files, each through its loader's (path, mtime) cache.
    def colour_rules(self) -> RuleSet:
        from app.boxes.colour import RULES_FILE, load_rules

        # Every box read asks for the rules: the loader's cache key (the path through pathlib,
        # the checks sorted into a tuple) cost more than the one stat() that tells whether the
        # file changed. The rule set is kept here by its file's path and modification time.
        path = os.path.join(self.rules_dir, RULES_FILE) if self.rules_dir else None
        if path is None or not os.path.exists(path):
            path = _SHIPPED_COLOUR_RULES
        key = (path, os.stat(path).st_mtime)
        memo = self.__dict__.get("_colour_rules")
        if memo is not None and memo[0] == key:
            return memo[1]
        rules = load_rules(self.rules_dir, self.colour_checks)
        object.__setattr__(self, "_colour_rules", (key, rules))  # a frozen dataclass: a cache only
        return rules

    def ledger_rules(self):
        from app.ledger.catalogue import load_ledger_rules

        return load_ledger_rules(self.rules_dir)

    def methods(self):
        from app.ledger.catalogue import load_methods

        return load_methods(self.rules_dir)

    def calendar(self):
        from app.ledger.calendar import load_calendar

        return load_calendar(self.rules_dir)

    def index_definition(self):
        from app.index.definition import load_definition

        return load_definition(self.rules_dir)

    def plausibility(self):
        from app.common.limits import load

        return load(self.rules_dir)

    def retention(self):
        from app.telemetry.services.partitions import load_retention

        return load_retention(self.rules_dir)


def colour_checks() -> Mapping[str, Check]:
    """The colour checks of the shipped app: the engine's own, the sensors', the waste's."""
    from app.boxes.colour import BASE_CHECKS
    from app.ledger.colour import WASTE_CHECKS
    from app.telemetry.colour import SENSOR_CHECKS

    return MappingProxyType({**BASE_CHECKS, **SENSOR_CHECKS, **WASTE_CHECKS})


def demo_extensions() -> tuple[DemoExtension, ...]:
    """The domains' parts of ``flask demo``, in the order they run (the sensors' readings first,
    then the ledger's closed loop, which the statistics' and the index's values follow)."""
    from app.demo.context import DemoExtension
    from app.index import demo as index_demo
    from app.ledger import demo as ledger_demo
    from app.statistics import demo as statistics_demo
    from app.telemetry import demo as telemetry_demo

    return (
        DemoExtension(telemetry_demo.stream_sensor_readings, telemetry_demo.REPLAY_DEFERRED_CHECKS),
        DemoExtension(ledger_demo.close_the_loop, ledger_demo.REPLAY_DEFERRED_CHECKS),
        DemoExtension(statistics_demo.value_added),
        DemoExtension(index_demo.synergy_index_values),
    )


def job_kinds() -> Mapping[str, JobKind]:
    """The kinds of jobs the shipped app runs (app/jobs/builtin.py)."""
    from app.jobs import builtin

    return MappingProxyType(
        {kind.name: kind for kind in (builtin.COLOUR_SWEEP, builtin.ROLLUP_REBUILD, builtin.EXPORT)}
    )


def job_exports() -> Mapping[str, ExportKind]:
    """The exports the ``export`` job kind runs, by the name a request gives (``params.export``)."""
    from app.jobs import exports, registry_export

    return MappingProxyType(
        {export.name: export for export in (exports.STATISTICS, exports.COLOUR_BOXES, registry_export.REGISTRY)}
    )


def _job_audit(session, principal) -> None:
    from app.audit.recorder import set_principal

    set_principal(session, "job", principal)


def generate_extensions() -> tuple[GeneratePart, ...]:
    """The domains' parts of ``flask demo generate`` (the benchmark data set), in order: the
    sensors' readings and the ledger's closed manifests (at once: neither reads what the other
    writes, see :mod:`app.demo.generate`), then the statistics' roll-ups rebuilt from what the
    others loaded in bulk."""
    from app.ledger.demo import generate as ledger_generate
    from app.statistics import generate as statistics_generate
    from app.telemetry import generate as telemetry_generate

    return (
        (telemetry_generate.generate_readings, ledger_generate.generate_manifests),
        statistics_generate.rebuild_rollups,
    )


def generate_registered() -> tuple[GenerateExtension, ...]:
    """The bulk counterparts, for ``flask demo generate``, of the ``box_registered`` hooks that
    :func:`build_wiring` plugs in (each domain's rows of a newly registered box)."""
    from app.telemetry import generate as telemetry_generate

    return (telemetry_generate.sensor_states,)


def build_wiring(config: Mapping[str, Any]) -> Wiring:
    """Plug the domains together, explicitly (never by the side effect of an import)."""
    from app.audit.boundary import bind_request
    from app.audit.recorder import cli_context
    from app.jobs.dispatch import request_from_cli
    from app.ledger import colour as ledger_colour
    from app.ledger import services as ledger
    from app.regeneration import services as regeneration
    from app.telemetry import colour as telemetry_colour
    from app.telemetry.services import states as telemetry_states

    wiring = Wiring(
        rules_dir=config.get("RULES_DIR") or None,
        fill_validators=(ledger.validate_replacement, regeneration.validate_fill),
        fill_hooks=(ledger.on_fill, regeneration.on_fill),
        fact_providers=(telemetry_colour.sensor_facts, ledger_colour.waste_on_site),
        colour_checks=colour_checks(),
        password_hash_method=config.get("PASSWORD_HASH_METHOD") or DEFAULT_PASSWORD_HASH_METHOD,
        audit=bool(config.get("AUDIT_ENABLED", True)),
        before_request_commit=(bind_request,),
        cli_transaction_begins=(cli_context,),
        job_kinds=job_kinds(),
        job_exports=job_exports(),
        job_transaction_begins=(_job_audit,),
        cli_job_request=request_from_cli,
        box_registered=(telemetry_states.create_sensor_state,),
    )
    wiring.colour_rules()  # a broken rule file stops the start, with its problems listed
    return wiring


def current_wiring() -> Wiring:
    """The wiring of the current app; outside an app context (a script), the default wiring."""
    wiring = current_app.extensions.get(EXTENSION_KEY) if has_app_context() else None
    return wiring if wiring is not None else build_wiring({})


def wiring_of(session) -> Wiring:
    """The wiring of the app that made ``session`` (see the module docstring)."""
    info = session.info
    wiring = info.get(SESSION_KEY)
    if wiring is None:
        wiring = info[SESSION_KEY] = build_wiring({})
    return wiring


class WiredSession(FlaskSession):
    """``db.session``: carries the wiring of the app whose context created it."""

    def __init__(self, db, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        if has_app_context():
            wiring = current_app.extensions.get(EXTENSION_KEY)
            if wiring is not None:
                self.info[SESSION_KEY] = wiring
