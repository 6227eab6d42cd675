"""Reference data every installation needs: Taizhou's county-level divisions (GB/T 2260)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.accounts.models import County

TAIZHOU_COUNTIES = (
    ("331002", "椒江区", "Jiaojiang"),
    ("331003", "黄岩区", "Huangyan"),
    ("331004", "路桥区", "Luqiao"),
    ("331022", "三门县", "Sanmen"),
    ("331023", "天台县", "Tiantai"),
    ("331024", "仙居县", "Xianju"),
    ("331081", "温岭市", "Wenling"),
    ("331082", "临海市", "Linhai"),
    ("331083", "玉环市", "Yuhuan"),
)


def ensure_counties(session: Session) -> None:
    for code, name, name_en in TAIZHOU_COUNTIES:
        if session.get(County, code) is None:
            session.add(County(code=code, name=name, name_en=name_en))
    session.flush()
