"""Ledger, stock and manifests: thin views over :mod:`app.ledger.services`.

Writes commit once, at the request boundary (app.common.tx): on success only, so a refused request
changes nothing (tests share one session across requests; a half-done change must never leak).
"""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.audit.signatures import issue_handover_code
from app.audit.signing_forms import handover_from_body, signature_from_body
from app.common.auth import require_user
from app.common.schemas import listing, page_schema
from app.common.timeutil import utcnow
from app.extensions import db
from app.ledger import schemas, services, verify_pages
from app.ledger.catalogue import load_catalogue
from app.ledger.pdf import manifest_pdf

blp = Blueprint("ledger", __name__, description="Waste ledger, stock and transfer manifests (台账、库存、转移联单)")


# ---------------------------------------------------------------- ledger and stock


@blp.route("/ledger")
class Ledger(MethodView):
    @blp.arguments(schemas.LedgerQuery, location="query")
    @blp.response(200, page_schema(schemas.LedgerRecordOut))
    def get(self, args):
        """An enterprise's ledger records (HJ 1259-2022 stages), oldest first; kg and t."""
        query = services.ledger_query(
            db.session(),
            require_user(),
            args.get("enterprise"),
            start=args.get("from_"),
            end=args.get("to"),
            stage=args.get("stage"),
            waste_code=args.get("waste_code"),
        )
        return listing(query, args)

    @blp.arguments(schemas.LedgerIn)
    @blp.response(201, schemas.LedgerRecordOut)
    def post(self, body):
        """Record a waste by hand (generation and into storage). Replacements record their own."""
        return services.record_by_hand(db.session(), require_user(), body)


@blp.route("/stock")
@blp.arguments(schemas.StockQuery, location="query")
@blp.response(200, schemas.StockOut)
def stock(args):
    """Stock on hand per waste code: on hand, reserved by submitted manifests, available."""
    return services.stock_summary(db.session(), require_user(), args.get("enterprise"), utcnow())


@blp.route("/waste-codes")
@blp.arguments(schemas.WasteCodeQuery, location="query")
@blp.response(200, page_schema(schemas.WasteCodeOut))
def waste_codes(args):
    """The national catalogue of hazardous wastes (2021 edition) shipped with the app."""
    require_user()
    entries = list(load_catalogue().entries.values())
    if args.get("category"):
        entries = [e for e in entries if e.category == args["category"]]
    if args.get("q"):
        entries = [e for e in entries if args["q"] in e.code or args["q"] in e.description]
    start = (args["page"] - 1) * args["per_page"]
    return {
        "items": entries[start : start + args["per_page"]],
        "total": len(entries),
        "page": args["page"],
        "per_page": args["per_page"],
    }


# ---------------------------------------------------------------- manifests


@blp.route("/manifests")
class Manifests(MethodView):
    @blp.arguments(schemas.ManifestQuery, location="query")
    @blp.response(200, page_schema(schemas.ManifestOut))
    def get(self, args):
        """Manifests visible to the caller; regulators filter flag=overdue|discrepant|late|rejected."""
        query = services.list_manifests(
            db.session(),
            require_user(),
            status=args.get("status"),
            flag=args.get("flag"),
            enterprise=args.get("enterprise"),
            party=args.get("party"),
        )
        return listing(query, args)

    @blp.arguments(schemas.ManifestIn)
    @blp.response(201, schemas.ManifestOut)
    def post(self, body):
        """Start a manifest from stock (draft; ``submit: true`` submits at once). Paper and national
        manifests are recorded with their number and transfer time."""
        actor = require_user()
        signature = (
            signature_from_body(db.session(), actor, body) if body.get("submit") else body.pop("signature", None)
        )
        return services.create_manifest(db.session(), actor, body, signature=signature)


@blp.route("/manifests/<string:number>.pdf")
@blp.response(200, content_type="application/pdf")
def manifest_pdf_view(number):
    """The printable manifest in Chinese, with a QR code to its verification page."""
    manifest = services.get_manifest(db.session(), require_user(), number)
    url = f"{current_app.config['PUBLIC_BASE_URL']}/m/{manifest.number}"
    return Response(
        manifest_pdf(manifest, url, utcnow()),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="manifest-{manifest.number}.pdf"'},
    )


@blp.route("/manifests/<string:number>")
@blp.response(200, schemas.ManifestOut)
def manifest_detail(number):
    """A manifest with its parties, lines, source batches and full event history."""
    return services.get_manifest(db.session(), require_user(), number)


def _action(number: str, action: str, body: dict):
    actor = require_user()
    manifest = services.get_manifest(db.session(), actor, number)
    signature = signature_from_body(db.session(), actor, body, manifest) if action != "cancel" else None
    handover = handover_from_body(db.session(), actor, body, manifest) if action == "pickup" else None
    services.act(db.session(), actor, manifest, action, body, signature=signature, handover=handover)
    return manifest


@blp.route("/manifests/<string:number>/submit", methods=["POST"])
@blp.arguments(schemas.SubmitIn)
@blp.response(200, schemas.ManifestOut)
def manifest_submit(body, number):
    """Consignor: submit a draft, signed (``signature``: the password); its quantities are reserved
    from stock (409 if stock is short)."""
    return _action(number, "submit", body)


@blp.route("/manifests/<string:number>/handover-code", methods=["POST"])
@blp.arguments(schemas.EmptyIn)
@blp.response(201, schemas.HandoverCodeOut)
def manifest_handover_code(body, number):
    """Consignor staff: a 6-digit one-time code (valid 30 minutes, single use) that the carrier
    types at pickup as the consignor's hand-over signature, when the consignor is not signed in there."""
    actor = require_user()
    manifest = services.get_manifest(db.session(), actor, number)
    code, row = issue_handover_code(db.session(), actor, manifest)
    return {"code": code, "expires_at": row.expires_at}


@blp.route("/manifests/<string:number>/pickup", methods=["POST"])
@blp.arguments(schemas.PickupIn)
@blp.response(200, schemas.ManifestOut)
def manifest_pickup(body, number):
    """Carrier: pick the waste up (vehicle plate, driver, time), signed by the carrier
    (``signature``) and handed over by the consignor (``handover``); it leaves the consignor's stock."""
    return _action(number, "pickup", body)


@blp.route("/manifests/<string:number>/receive", methods=["POST"])
@blp.arguments(schemas.ReceiveIn)
@blp.response(200, schemas.ManifestOut)
def manifest_receive(body, number):
    """Receiver: weighed quantity per line; accept or accept in part (with a reason)."""
    return _action(number, "receive", body)


@blp.route("/manifests/<string:number>/reject", methods=["POST"])
@blp.arguments(schemas.RejectIn)
@blp.response(200, schemas.ManifestOut)
def manifest_reject(body, number):
    """Receiver: refuse the whole shipment (拒收) with a reason; the waste returns to the consignor's stock."""
    return _action(number, "reject", body)


@blp.route("/manifests/<string:number>/process", methods=["POST"])
@blp.arguments(schemas.ProcessIn)
@blp.response(200, schemas.ManifestOut)
def manifest_process(body, number):
    """Receiver: the utilisation/disposal method code per accepted line; the manifest closes."""
    return _action(number, "process", body)


@blp.route("/manifests/<string:number>/cancel", methods=["POST"])
@blp.arguments(schemas.CancelIn)
@blp.response(200, schemas.ManifestOut)
def manifest_cancel(body, number):
    """Consignor: cancel before pickup; a reservation is released."""
    return _action(number, "cancel", body)


from app.ledger.registry_views import blp as registry_blp  # noqa: E402 (the manifest registry)
from app.ledger.revision_views import blp as revisions_blp  # noqa: E402 (revisions and versions)

API_BLUEPRINTS = (blp, revisions_blp, registry_blp)
BLUEPRINTS = (verify_pages.pages,)
