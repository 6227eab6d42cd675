"""CSV and XLSX downloads of the statistics, with Chinese column headers and units.

Park administrations hand these to their own reports and open them in Excel: the CSV is UTF-8
with a BOM (without it Excel on Chinese Windows reads UTF-8 as GBK and garbles the headers), the
XLSX has a summary sheet and one sheet per breakdown. The labels are the Chinese terms of the
reports themselves (台账、联单), so they are not run through gettext. No Flask here.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Font

COLOUR_ZH = {"grey": "灰码", "green": "绿码", "yellow": "黄码", "red": "红码"}
TREATMENT_ZH = {
    "utilised": "利用",
    "incinerated": "焚烧",
    "cement_kiln": "水泥窑协同处置",
    "landfilled": "填埋",
    "other": "其他处置",
}

GAP_ZH = {
    "replaced_vs_weighed": "物料平衡：换下炭与称重废炭之差",
    "generated_vs_shipped": "物料平衡：产生与转移之差",
    "shipped_vs_received": "物料平衡：转移与接收之差",
}

SUMMARY_HEADER = ("指标", "数值", "单位")
WASTE_CODE_HEADER = (
    "废物代码",
    "废物名称",
    "产生量 (kg)",
    "入库量 (kg)",
    "退回入库 (kg)",
    "期末在库 (kg)",
    "转移量 (kg)",
    "接收量 (kg)",
    "接受量 (kg)",
)
WASTE_CODE_KEYS = (
    "waste_code",
    "waste_name",
    "generated_kg",
    "into_storage_kg",
    "returned_kg",
    "in_storage_end_kg",
    "shipped_kg",
    "received_kg",
    "accepted_kg",
)
METHOD_HEADER = ("利用/处置方式代码", "类别", "数量 (kg)")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
# Characters XML 1.0 (and so XLSX) cannot carry: C0 controls but tab, newline and carriage return.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str) -> str:
    """A name as a spreadsheet cell can hold it: control characters (a park named "Park\\x01x")
    are replaced by U+FFFD, which shows that something was there."""
    return _ILLEGAL.sub("\ufffd", value)


def _cell(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula (a park named "=HYPERLINK(…)", also after
    leading blanks) is written as text: a leading apostrophe in the CSV, a string cell in the XLSX
    (openpyxl makes any text starting with "=" a formula). Control characters are replaced.
    Numbers stay numbers; a non-finite one (never expected: inputs are bounded) is left empty
    rather than written as "inf"."""
    if isinstance(value, str):
        value = clean_text(value)
        if value.lstrip(" ").startswith(FORMULA_START):
            return "'" + value
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 4)


def summary_rows(m: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(指标, 数值, 单位) rows of the summary, in the order of the page's tables."""
    t, r, mf, b, rp, i = (
        m["treatment"],
        m["regeneration"],
        m["manifests"],
        m["boxes"],
        m["replacements"],
        m["intensity"],
    )
    trend = m["landfill_trend"]
    rows: list[tuple[str, Any, str]] = [
        ("统计范围", m["scope"]["name"], ""),
        ("统计期间", m["period"]["label"], ""),
        ("产生量", m["generated_kg"], "kg"),
        ("产生量", m["generated_t"], "t"),
        ("入库量", m["into_storage_kg"], "kg"),
        ("期末在库量", m["in_storage_end_kg"], "kg"),
        ("退回入库量", m["returned_kg"], "kg"),
        ("转移量", m["shipped_kg"], "kg"),
        ("接收量", m["received_kg"], "kg"),
        ("接受量", m["accepted_kg"], "kg"),
        ("利用/处置量", t["processed_kg"], "kg"),
    ]
    rows += [(f"{TREATMENT_ZH[k]}量", t[f"{k}_kg"], "kg") for k in TREATMENT_ZH]
    rows += [
        ("填埋占比", _pct(m["landfill_share"]), "%"),
        (f"上期（{trend['previous']['period']}）填埋占比", _pct(trend["previous"]["landfill_share"]), "%"),
        ("较上期变化", _pct(trend["previous"]["change_share"]), "百分点"),
        (f"基准期（{trend['base']['period']}）填埋占比", _pct(trend["base"]["landfill_share"]), "%"),
        ("较基准期变化", _pct(trend["base"]["change_share"]), "百分点"),
        ("废活性炭利用/处置量", r["waste_carbon_processed_kg"], "kg"),
        ("其中再生批次已消耗", r["waste_carbon_regenerated_kg"], "kg"),
        ("废活性炭再生率", _pct(r["regeneration_rate_share"]), "%"),
        ("使用再生炭的装填（次数占比）", _pct(r["regenerated_fills_count_share"]), "%"),
        ("使用再生炭的装填（重量占比）", _pct(r["regenerated_fills_kg_share"]), "%"),
        ("转移联单数", mf["shipped_count"], "张"),
        ("按时接收", mf["on_time_count"], "张"),
        ("超期", mf["overdue_count"], "张"),
        ("数量差异", mf["discrepant_count"], "张"),
        ("拒收", mf["rejected_count"], "张"),
        ("运输中（未超期）", mf["in_transit_count"], "张"),
        ("按时接收率", _pct(mf["on_time_share"]), "%"),
    ]
    rows += [(f"碳箱（{COLOUR_ZH[c]}）", b["by_colour"][c], "个") for c in COLOUR_ZH]
    rows += [
        ("红码箱天数", b["red_box_days"], "箱·天"),
        ("更换次数", rp["replacement_count"], "次"),
        ("按时更换率", _pct(rp["on_time_replacement_share"]), "%"),
        ("工业增加值", i["value_added_10k_yuan"], "万元"),
        ("产废强度", i["generation_intensity_t_per_10k_yuan"], "t/万元"),
        (f"上年同期（{i['previous_year_period']}）产废强度", i["previous_year_intensity_t_per_10k_yuan"], "t/万元"),
        ("产废强度同比增长", _pct(i["yoy_growth_share"]), "%"),
    ]
    rows += [(GAP_ZH.get(g["code"], g["code"]), g["gap_kg"], "kg") for g in m["mass_balance"]["gaps"]]
    return rows


def _code_rows(m: dict[str, Any]) -> list[list[Any]]:
    return [[item[k] for k in WASTE_CODE_KEYS] for item in m["by_waste_code"]]


def _method_rows(m: dict[str, Any]) -> list[list[Any]]:
    return [[row["method_code"], TREATMENT_ZH[row["treatment"]], row["quantity_kg"]] for row in m["by_method"]]


def to_csv(m: dict[str, Any]) -> bytes:
    """Three tables one after the other, separated by an empty line: summary, by waste code, by method."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SUMMARY_HEADER)
    writer.writerows(("" if v is None else _cell(v) for v in row) for row in summary_rows(m))
    writer.writerow(())
    writer.writerow(WASTE_CODE_HEADER)
    writer.writerows(["" if v is None else _cell(v) for v in row] for row in _code_rows(m))
    writer.writerow(())
    writer.writerow(METHOD_HEADER)
    writer.writerows(["" if v is None else _cell(v) for v in row] for row in _method_rows(m))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _sheet(wb: Workbook, title: str, header, rows, first: bool = False):
    ws = wb.active if first else wb.create_sheet()
    ws.title = clean_text(title)[:31]
    ws.append(list(header))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([_cell(v) for v in row])
    for column, width in zip("ABCDEFGHI", (28, 40, 14, 14, 14, 14, 14, 14, 14), strict=True):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A2"
    return ws


def to_xlsx(m: dict[str, Any], series: list[dict[str, Any]] | None = None) -> bytes:
    wb = Workbook()
    _sheet(wb, "汇总", SUMMARY_HEADER, summary_rows(m), first=True)
    _sheet(wb, "按废物代码", WASTE_CODE_HEADER, _code_rows(m))
    _sheet(wb, "按利用处置方式", METHOD_HEADER, _method_rows(m))
    _sheet(
        wb,
        "物料平衡",
        ("差异", "差值 (kg)", "说明"),
        [(GAP_ZH.get(g["code"], g["code"]), g["gap_kg"], g["zh"]) for g in m["mass_balance"]["gaps"]],
    )
    if series is not None:
        _sheet(
            wb,
            "月度填埋占比",
            ("月份", "利用/处置量 (kg)", "填埋量 (kg)", "填埋占比 (%)"),
            [(p["period"], p["processed_kg"], p["landfilled_kg"], _pct(p["landfill_share"])) for p in series],
        )
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def filename(m: dict[str, Any], extension: str) -> tuple[str, str]:
    """(ASCII fallback, UTF-8 name) naming the scope and the period."""
    scope = m["scope"]
    ident = {"park": f"park-{scope['park_id']}", "county": f"county-{scope['county_code']}"}.get(scope["kind"], "city")
    period = m["period"]["label"]
    name = re.sub(r'[\x00-\x1f\x7f/\\\\:*?"<>|]', "_", scope["name"])  # no control or path characters
    return f"statistics_{ident}_{period}.{extension}", f"{name}_{period}_统计.{extension}"


def content_disposition(m: dict[str, Any], extension: str) -> str:
    ascii_name, utf8_name = filename(m, extension)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(utf8_name)}"
