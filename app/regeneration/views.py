"""Regeneration batches: thin views over :mod:`app.regeneration.services`."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from app.common.auth import require_user
from app.common.schemas import listing, page_schema
from app.extensions import db
from app.regeneration import schemas, services

blp = Blueprint("regeneration", __name__, description="Regeneration batches (再生批次): the loop back to the boxes")


@blp.route("/regeneration-batches")
class Batches(MethodView):
    @blp.arguments(schemas.BatchQuery, location="query")
    @blp.response(200, page_schema(schemas.BatchOut))
    def get(self, args):
        """Regeneration batches of the caller's plant, or of plants in the caller's jurisdiction."""
        query = services.list_batches(db.session(), require_user(), args.get("plant"), args["available"])
        return listing(query, args)

    @blp.arguments(schemas.BatchIn)
    @blp.response(201, schemas.BatchOut)
    def post(self, body):
        """Record a batch: received waste carbon consumed (manifest lines, kg), carbon produced, iodine."""
        return services.record_batch(db.session(), require_user(), body)


@blp.route("/regeneration-batches/<int:batch_id>")
@blp.response(200, schemas.BatchOut)
def batch_detail(batch_id):
    return services.get_batch(db.session(), require_user(), batch_id)


API_BLUEPRINTS = (blp,)
