"""Revisions and versions over the API: thin views over :mod:`app.ledger.services.revisions`."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.common.auth import require_user
from app.common.errors import PROBLEM_MIME, ProblemSchema
from app.common.schemas import listing, page_schema
from app.extensions import db
from app.ledger import revision_schemas as schemas
from app.ledger.services import revision_versions as versions
from app.ledger.services import revisions as services
from app.ledger.services.manifests import get_manifest

blp = Blueprint(
    "revisions",
    __name__,
    description="Revisions (更正申请) of manifests and ledger records, and the versions they leave",
)


def _problem(status: int, description: str):
    return blp.alt_response(status, schema=ProblemSchema, content_type=PROBLEM_MIME, description=description)


FORBIDDEN = _problem(403, "Not a party asked to request or decide it")
NOT_FOUND = _problem(404, "Not found, or not visible to the caller")
CONFLICT = _problem(409, "Not in a state that allows it, one pending already, or stock would not cover it")


def _refusals(view):
    """The refusals every request and decision documents: 403, 404, 409."""
    return FORBIDDEN(NOT_FOUND(CONFLICT(view)))


@blp.route("/manifests/<string:number>/revisions", methods=["POST"])
@blp.arguments(schemas.ManifestRevisionIn)
@blp.response(201, schemas.RevisionOut)
@_refusals
def manifest_revision(body, number):
    """A party of a manifest past its draft requests a correction (reason required); the other
    parties must approve it. 409 when one is pending already or stock would not cover it."""
    actor = require_user()
    manifest = get_manifest(db.session(), actor, number)
    return services.request_manifest_revision(db.session(), actor, manifest, body)


@blp.route("/ledger/<int:record_id>/revisions", methods=["POST"])
@blp.arguments(schemas.RecordRevisionIn)
@blp.response(201, schemas.RevisionOut)
@_refusals
def record_revision(body, record_id):
    """The enterprise requests a correction of a generation record; its regulator must approve it."""
    actor = require_user()
    record = services.get_record(db.session(), actor, record_id)
    return services.request_record_revision(db.session(), actor, record, body)


@blp.route("/revisions")
@blp.arguments(schemas.RevisionQuery, location="query")
@blp.response(200, page_schema(schemas.RevisionOut))
def revisions(args):
    """Revisions the caller takes part in; regulators also see the pending and approved ones of
    their jurisdiction. Newest first."""
    query = services.list_revisions(
        db.session(),
        require_user(),
        state=args.get("state"),
        target=args.get("target"),
        enterprise=args.get("enterprise"),
    )
    return listing(query, args)


@blp.route("/revisions/<int:revision_id>")
@blp.response(200, schemas.RevisionOut)
def revision(revision_id):
    """One revision with its approvals and, once approved, the before and after content."""
    return services.get_revision(db.session(), require_user(), revision_id)


def _decide(revision_id: int, decision: str, body: dict):
    actor = require_user()
    found = services.get_revision(db.session(), actor, revision_id)
    if decision == "approve":
        return services.approve(db.session(), actor, found, body)
    if decision == "refuse":
        return services.refuse(db.session(), actor, found, body)
    return services.cancel(db.session(), actor, found)


@blp.route("/revisions/<int:revision_id>/approve", methods=["POST"])
@blp.arguments(schemas.DecisionIn)
@blp.response(200, schemas.RevisionOut)
@_refusals
def approve(body, revision_id):
    """A party asked to approve agrees; the last approval applies the revision as a new version."""
    return _decide(revision_id, "approve", body)


@blp.route("/revisions/<int:revision_id>/refuse", methods=["POST"])
@blp.arguments(schemas.DecisionIn)
@blp.response(200, schemas.RevisionOut)
@_refusals
def refuse(body, revision_id):
    """A party asked to approve refuses (note required); the revision is refused."""
    return _decide(revision_id, "refuse", body)


@blp.route("/revisions/<int:revision_id>/cancel", methods=["POST"])
@blp.arguments(schemas.DecisionIn)
@blp.response(200, schemas.RevisionOut)
@_refusals
def cancel(body, revision_id):
    """The requester withdraws a pending revision."""
    return _decide(revision_id, "cancel", body)


@blp.route("/manifests/<string:number>/versions")
@blp.response(200, schemas.VersionsOut)
def manifest_versions(number):
    """Every version of a manifest, oldest first; the last is the current one."""
    return {"items": versions.manifest_versions(db.session(), require_user(), number)}


@blp.route("/manifests/<string:number>/versions/<int:version>")
@blp.response(200, schemas.VersionOut)
def manifest_version(number, version):
    """One version of a manifest as it was."""
    return versions.one_version(versions.manifest_versions(db.session(), require_user(), number), version)


@blp.route("/ledger/<int:record_id>/versions")
@blp.response(200, schemas.VersionsOut)
def record_versions(record_id):
    """Every version of a ledger record, oldest first; the last is the current one."""
    return {"items": versions.record_versions(db.session(), require_user(), record_id)}


@blp.route("/ledger/<int:record_id>/versions/<int:version>")
@blp.response(200, schemas.VersionOut)
def record_version(record_id, version):
    """One version of a ledger record as it was."""
    return versions.one_version(versions.record_versions(db.session(), require_user(), record_id), version)
