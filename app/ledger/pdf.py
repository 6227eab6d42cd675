"""The printable transfer manifest (危险废物转移联单), A4, in Chinese, with a QR code to its
verification page.

Chinese text uses reportlab's built-in CID font ``STSong-Light`` (no font file needed; the viewer
substitutes its Song typeface). The QR code is drawn as vectors with reportlab's own QR widget.
No Flask here: the caller passes the verification URL.
"""
from __future__ import annotations

import io
from datetime import datetime

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from app.common.timeutil import to_local_str
from app.ledger.models import PHYSICAL_FORMS, STATE_ZH, Manifest

CJK = "STSong-Light"
ACTION_ZH = {"create": "填写", "submit": "提交", "pickup": "承运人提货", "receive": "接受人接收", "reject": "接受人拒收",
             "process": "利用/处置", "close": "办结", "cancel": "作废", "record_transfer": "补录转移"}
ORIGIN_ZH = {"electronic": "电子联单", "paper": "纸质联单补录", "national": "全国系统联单"}


def _font() -> str:
    if CJK not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))
    return CJK


def _t(value: datetime | None) -> str:
    return to_local_str(value) if value else "—"


def _kg(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def manifest_pdf(manifest: Manifest, verify_url: str, printed_at: datetime) -> bytes:
    font = _font()
    buf = io.BytesIO()
    pdf = Canvas(buf, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"危险废物转移联单 {manifest.number}")
    pdf.setAuthor("台州碳箱码")
    width, height = A4
    left, right = 15 * mm, width - 15 * mm
    y = height - 20 * mm

    def text(x: float, y_: float, value: str, size: float = 9.5) -> None:
        pdf.setFont(font, size)
        pdf.drawString(x, y_, value)

    def line_break(step: float = 5.5 * mm) -> None:
        nonlocal y
        y -= step
        if y < 20 * mm:
            pdf.showPage()
            y = height - 20 * mm

    pdf.setFont(font, 18)
    pdf.drawString(left, y, "危险废物转移联单")
    qr_size = 32 * mm
    widget = QrCodeWidget(verify_url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, right - qr_size, height - 12 * mm - qr_size)
    pdf.setFont("Helvetica", 6.5)
    pdf.drawRightString(right, height - 14 * mm - qr_size, verify_url)
    text(right - qr_size, height - 18 * mm - qr_size, "扫码核验联单状态", 7)
    line_break(9 * mm)
    text(left, y, f"联单编号：{manifest.number}", 11)
    line_break()
    text(left, y, f"类型：{ORIGIN_ZH.get(manifest.origin, manifest.origin)}    当前状态：{STATE_ZH[manifest.status]}")
    line_break()
    text(left, y, f"打印时间：{to_local_str(printed_at)}")
    line_break(8 * mm)

    parties = [
        ("移出人", manifest.consignor, ""),
        ("承运人", manifest.carrier, f"车牌号：{manifest.vehicle_plate or '—'}  驾驶员：{manifest.driver_name or '—'}"),
        ("接受人", manifest.receiver, f"经营许可证号：{manifest.receiver_licence or '—'}"),
    ]
    for role, org, extra in parties:
        text(left, y, f"{role}：{org.name}", 10)
        line_break(4.8 * mm)
        text(left + 8 * mm, y, f"统一社会信用代码：{org.uscc or '—'}  {extra}", 8.5)
        line_break(6.5 * mm)
    if manifest.route:
        text(left, y, f"运输路线：{manifest.route}")
        line_break()

    line_break(2 * mm)
    columns = [("序号", 0), ("废物代码", 10), ("废物名称", 33), ("形态", 88), ("危险特性", 101), ("包装", 120),
               ("数量(kg)", 137), ("接收(kg)", 155), ("方式", 172)]
    pdf.setStrokeColor(colors.black)
    pdf.line(left, y + 4 * mm, right, y + 4 * mm)
    for title, dx in columns:
        text(left + dx * mm, y, title, 8.5)
    line_break(2 * mm)
    pdf.line(left, y + 1 * mm, right, y + 1 * mm)
    line_break(4 * mm)
    for line in manifest.lines:
        name = line.waste_name if len(line.waste_name) <= 20 else line.waste_name[:19] + "…"  # fits its 55 mm column
        cells = [str(line.line_no), line.waste_code, name, PHYSICAL_FORMS.get(line.physical_form, line.physical_form),
                 line.hazard, line.packaging[:8], _kg(line.quantity_kg), _kg(line.received_kg), line.method_code or "—"]
        for (title, dx), value in zip(columns, cells):
            text(left + dx * mm, y, value, 7.5 if dx == 33 else 8.5)
        line_break(5 * mm)
    pdf.line(left, y + 3 * mm, right, y + 3 * mm)
    total = sum(line.quantity_kg for line in manifest.lines)
    text(left, y - 1 * mm, f"合计：{total:g} kg（{total / 1000:g} t）")
    line_break(8 * mm)
    if manifest.reject_reason:
        text(left, y, f"拒收原因：{manifest.reject_reason[:60]}")
        line_break()
    flags = []
    if manifest.discrepant:
        flags.append("接收量与转移量差异超出允许范围")
    if manifest.is_overdue(printed_at):
        flags.append("超期未接收")
    if manifest.late_entry:
        flags.append("补录超期")
    if flags:
        text(left, y, "提示：" + "；".join(flags))
        line_break()

    text(left, y, "流转记录", 11)
    line_break(6 * mm)
    for event in manifest.events:
        who = event.organization_name or "系统"
        text(left, y, f"{_t(event.at)}  {ACTION_ZH.get(event.action, event.action)}  {who}（{event.actor}）", 8.5)
        line_break(4.8 * mm)
    line_break(6 * mm)
    for role in ("移出人（签章）", "承运人（签章）", "接受人（签章）"):
        text(left, y, f"{role}：______________________    日期：____________")
        line_break(8 * mm)
    pdf.setFont(font, 7)
    pdf.drawString(left, 10 * mm, "依据《危险废物转移管理办法》（生态环境部令第23号）。本联单以系统记录为准，扫描二维码核验。")
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
