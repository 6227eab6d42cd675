"""Builders for the synergy index tests (no tests here): the shipped definition as data, rows,
CSV/XLSX files, uploads and what the table holds."""

from __future__ import annotations

import csv
import io

import yaml
from openpyxl import Workbook
from sqlalchemy import select

from app.extensions import db
from app.index.models import IndicatorValue
from app.rules import DATA_DIR

HEADER = ["county_code", "period", "indicator", "value", "source_department"]
JJ, TT, WL = "331002", "331023", "331081"


def raw() -> dict:
    with open(DATA_DIR / "synergy_index.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def values(rows, as_="op", api=None):
    return api.post("/api/v1/index/values", rows, as_=as_)


def row(county=TT, period="2025", indicator=3, value=90, source="市生态环境局", **more):
    return {
        "county_code": county,
        "period": period,
        "indicator": indicator,
        "value": value,
        "source_department": source,
        **more,
    }


def stored() -> dict[tuple[str, str, int], tuple[float, str]]:
    db.session.expire_all()
    return {
        (v.county_code, v.period, v.indicator): (v.value, v.source_department)
        for v in db.session.scalars(select(IndicatorValue))
    }


def csv_bytes(header: list[str], rows: list[list], encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(header: list[str], rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(api, data: bytes, filename: str, as_: str = "op", content_type: str | None = None):
    return api.client.post(
        "/api/v1/index/values",
        data={"file": (io.BytesIO(data), filename, content_type)},
        headers=api._headers(as_, None),
        content_type="multipart/form-data",
    )
