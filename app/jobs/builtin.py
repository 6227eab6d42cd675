"""The shipped job kinds: the colour sweep, the roll-up rebuild and the generic export (the wiring registers them)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.accounts.services import Principal
from app.boxes.models import Box
from app.boxes.services import refresh_due_chunk
from app.common.errors import Forbidden
from app.common.wiring import wiring_of
from app.jobs.kinds import ExportKind, JobKind, JobRun, schema_loader
from app.jobs.schemas import ColourSweepParams, ExportParams, RollupRebuildParams
from app.statistics.services import rollups

# ---------------------------------------------------------------- colour_sweep


def _operators_only(_session: Session, actor: Principal, _params: dict[str, Any]) -> None:
    if not actor.is_operator:
        raise Forbidden("只有平台运维可以运行颜色巡检 (only operators may run the colour sweep)")


def _due_count(session: Session, run: JobRun) -> int:
    due = or_(Box.colour_next_check_at <= run.now, Box.colour_detail.is_(None))
    return session.scalar(select(func.count()).select_from(Box).where(due)) or 0


def colour_sweep(run: JobRun, params: dict[str, Any]) -> None:
    """``boxes refresh-colours`` as a job: the boxes due at the attempt's start, a chunk per
    transaction, the progress stored with each chunk. Idempotent: a repeated attempt finds only
    what is still due (the chunks an earlier attempt stored are done and stay done)."""
    chunk = int(params.get("chunk") or 500)
    total = _due_count(run.session, run)
    done = 0
    run.report(0, total)
    while True:
        with run.step() as session:
            n = refresh_due_chunk(session, run.now, chunk, unstored=True)
            done += n
            run.report(done, max(total, done))
        if n < chunk:
            break
    run.finish_with_summary({"boxes_evaluated": done})


COLOUR_SWEEP = JobKind(
    name="colour_sweep",
    load_params=schema_loader(ColourSweepParams),
    authorise=_operators_only,
    run=colour_sweep,
    title_zh="颜色巡检",
    title_en="Colour sweep",
)


# ---------------------------------------------------------------- rollup_rebuild


def _operators_only_rebuild(_session: Session, actor: Principal, _params: dict[str, Any]) -> None:
    if not actor.is_operator:
        raise Forbidden("只有平台运维可以重建统计汇总 (only operators may rebuild the statistics roll-ups)")


def rollup_rebuild(run: JobRun, params: dict[str, Any]) -> None:
    """``statistics rebuild`` as a job: a month or a chunk of boxes per transaction, each step's
    progress stored with it. Idempotent: every step rewrites its rows from the raw records."""
    steps = list(rollups.rebuild_steps(run.session, int(params.get("box_chunk") or rollups.BOX_CHUNK)))
    run.report(0, len(steps))
    for done, (_label, step) in enumerate(steps, start=1):
        with run.step():
            step()
            run.report(done, len(steps))
    run.finish_with_summary({"steps": len(steps)})


ROLLUP_REBUILD = JobKind(
    name="rollup_rebuild",
    load_params=schema_loader(RollupRebuildParams),
    authorise=_operators_only_rebuild,
    run=rollup_rebuild,
    title_zh="重建统计汇总",
    title_en="Rebuild the statistics roll-ups",
)


# ---------------------------------------------------------------- export


def export_kind_of(session: Session, name: str) -> ExportKind:
    exports = wiring_of(session).job_exports
    found = exports.get(name)
    if found is None:
        raise ValidationError({"export": [f"unknown export {name!r}; one of {', '.join(sorted(exports))}"]})
    return found


def load_export_params(session: Session, params: dict[str, Any]) -> dict[str, Any]:
    """``export`` (a name the wiring knows) and ``format``, then the named export's own params."""
    base = ExportParams().load(params)
    export = export_kind_of(session, base["export"])
    errors: dict[str, Any] = {}
    if base["format"] not in export.formats:
        errors["format"] = [f"must be one of: {', '.join(export.formats)}"]
    try:
        own = export.params_schema().load(_own(params))
    except ValidationError as exc:
        errors.update(exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages})
        own = {}
    if errors:
        raise ValidationError(errors)
    return {"export": export.name, "format": base["format"], **own}


def _own(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in ("export", "format")}


def authorise_export(session: Session, actor: Principal, params: dict[str, Any]) -> None:
    export_kind_of(session, params["export"]).authorise(session, actor, _own(params))


def export(run: JobRun, params: dict[str, Any]) -> None:
    """Run the export named by ``params.export`` into the job's result file. The requester is
    authorised again (a right withdrawn since the request stops the export). Idempotent: every
    attempt writes the whole file anew."""
    user = run.principal.user if run.principal is not None else None
    if run.principal is None or user is None or not user.active:
        raise Forbidden("导出任务需要一位在职的申请人 (an export needs the active user who asked for it)")
    spec = export_kind_of(run.session, params["export"])
    spec.authorise(run.session, run.principal, _own(params))
    with run.result_file() as out:
        meta = spec.write(run.session, run.principal, _own(params), params["format"], out, run.report)
    run.finish_with_file(meta.ascii_name, meta.utf8_name, meta.mime)


EXPORT = JobKind(
    name="export",
    load_params=load_export_params,
    authorise=authorise_export,
    run=export,
    title_zh="导出",
    title_en="Export",
)
