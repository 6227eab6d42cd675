"""Who may import index values and who may read the scores."""

from __future__ import annotations

from app.accounts.services import Principal
from app.common.errors import Forbidden


def is_city_regulator(actor: Principal) -> bool:
    org = actor.organization
    return bool(not actor.is_device and org is not None and org.has_role("regulator") and org.county_code is None)


def can_import(actor: Principal) -> bool:
    return not actor.is_device and (actor.is_operator or is_city_regulator(actor))


def can_read_scores(actor: Principal) -> bool:
    if actor.is_device:
        return False
    return actor.is_operator or actor.has_role("regulator")


def require_importer(actor: Principal) -> None:
    if not can_import(actor):
        raise Forbidden(
            "只有平台运维和市生态环境局可以导入协同指数数据 (only operators and the city regulator may "
            "import index values)"
        )


def require_score_reader(actor: Principal) -> None:
    if not can_read_scores(actor):
        raise Forbidden("只有监管部门可以查看协同指数 (only regulators may read the synergy index)")
