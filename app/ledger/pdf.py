"""The printable transfer manifest (危险废物转移联单), A4, in Chinese, with a QR code to its
verification page.

Chinese text uses the CJK TrueType font shipped in :mod:`app.fonts` (WenQuanYi Micro Hei, GB 2312
subset), embedded per document, so every viewer shows it. The page is laid out with reportlab's
platypus: every name, packaging, address and reason is a wrapping :class:`Paragraph` (in table
cells too), so nothing is cut off at any length; a long table continues on the next page with its
header repeated. The QR code is drawn as vectors with reportlab's own QR widget.
No Flask here: the caller passes the verification URL.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.common.timeutil import to_local_str
from app.fonts import cjk_font
from app.ledger.models import PHYSICAL_FORMS, STATE_ZH, Manifest

ACTION_ZH = {
    "create": "填写",
    "submit": "提交",
    "pickup": "承运人提货",
    "receive": "接受人接收",
    "reject": "接受人拒收",
    "process": "利用/处置",
    "close": "办结",
    "cancel": "作废",
    "record_transfer": "补录转移",
}
PARTY_SIGN_ZH = {"consignor": "移出人", "carrier": "承运人", "receiver": "接受人"}
METHOD_ZH = {"password": "密码签名", "one_time_code": "一次性交接码签名"}
ORIGIN_ZH = {"electronic": "电子联单", "paper": "纸质联单补录", "national": "全国系统联单"}
MARGIN = 15 * mm
FOOTER = "依据《危险废物转移管理办法》（生态环境部令第23号）。本联单以系统记录为准，扫描二维码核验。"
#: Widths of the lines table (mm), 180 mm in all.
COLUMNS = [
    ("序号", 9),
    ("废物代码", 18),
    ("废物名称", 42),
    ("形态", 12),
    ("危险特性", 16),
    ("包装", 30),
    ("数量(kg)", 18),
    ("接收(kg)", 18),
    ("方式", 17),
]


def _t(value: datetime | None) -> str:
    return to_local_str(value) if value else "—"


def _kg(value: float | Decimal | None) -> str:
    return "—" if value is None else f"{value:g}"


def _styles(font: str) -> dict[str, ParagraphStyle]:
    # wordWrap="CJK" breaks between any two characters, so a long run without spaces (Chinese,
    # or a code) still wraps inside its cell instead of running out of it.
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=13, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=18, leading=24),
        "number": ParagraphStyle("number", parent=base, fontSize=11, leading=15),
        "body": base,
        "party": ParagraphStyle("party", parent=base, fontSize=10, leading=14, spaceBefore=3),
        "detail": ParagraphStyle("detail", parent=base, fontSize=8.5, leading=11.5, leftIndent=8 * mm),
        "h2": ParagraphStyle("h2", parent=base, fontSize=11, leading=15, spaceBefore=6, spaceAfter=2),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10),
        "head": ParagraphStyle("head", parent=base, fontSize=8.5, leading=10.5),
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=9),
        "url": ParagraphStyle("url", parent=base, fontSize=6.5, leading=8, alignment=2),
    }


def _p(value: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(value)), style)


def _qr(url: str, size: float) -> Drawing:
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def manifest_pdf(manifest: Manifest, verify_url: str, printed_at: datetime) -> bytes:
    font = cjk_font()
    st = _styles(font)
    width, _height = A4
    inner = width - 2 * MARGIN
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=f"危险废物转移联单 {manifest.number}",
        author="台州碳箱码",
        pageCompression=1,
    )

    qr_size = 32 * mm
    head_left = [
        _p("危险废物转移联单", st["title"]),
        Spacer(1, 3 * mm),
        _p(f"联单编号：{manifest.number}", st["number"]),
        _p(
            f"类型：{ORIGIN_ZH.get(manifest.origin, manifest.origin)}    当前状态：{STATE_ZH[manifest.status]}",
            st["body"],
        ),
        _p(f"打印时间：{to_local_str(printed_at)}", st["body"]),
    ]
    head_right = [
        _qr(verify_url, qr_size),
        _p(verify_url, st["url"]),
        _p("扫码核验联单状态", ParagraphStyle("qrnote", parent=st["small"], alignment=2)),
    ]
    header = Table([[head_left, head_right]], colWidths=[inner - 60 * mm, 60 * mm])
    header.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (1, 0), (1, 0), "RIGHT"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    story: list = [header, Spacer(1, 4 * mm)]

    parties = [
        ("移出人", manifest.consignor, ""),
        ("承运人", manifest.carrier, f"车牌号：{manifest.vehicle_plate or '—'}  驾驶员：{manifest.driver_name or '—'}"),
        ("接受人", manifest.receiver, f"经营许可证号：{manifest.receiver_licence or '—'}"),
    ]
    for role, org, extra in parties:
        story.append(_p(f"{role}：{org.name}", st["party"]))
        story.append(_p(f"统一社会信用代码：{org.uscc or '—'}  {extra}".rstrip(), st["detail"]))
        if org.address:
            story.append(_p(f"地址：{org.address}", st["detail"]))
    if manifest.route:
        story.append(Spacer(1, 1.5 * mm))
        story.append(_p(f"运输路线：{manifest.route}", st["body"]))
    story.append(Spacer(1, 4 * mm))

    rows: list[list] = [[_p(title, st["head"]) for title, _ in COLUMNS]]
    for line in manifest.lines:
        cells = [
            line.line_no,
            line.waste_code,
            line.waste_name,
            PHYSICAL_FORMS.get(line.physical_form, line.physical_form),
            line.hazard,
            line.packaging or "—",
            _kg(line.quantity_kg),
            _kg(line.received_kg),
            line.method_code or "—",
        ]
        rows.append([_p(value, st["cell"]) for value in cells])
    # splitInRow: a row taller than what is left of the page (a very long name) continues on the next.
    table = Table(rows, colWidths=[w * mm for _, w in COLUMNS], repeatRows=1, splitInRow=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    story.append(table)
    total = sum(line.quantity_kg for line in manifest.lines)
    story.append(Spacer(1, 1.5 * mm))
    story.append(_p(f"合计：{total:g} kg（{total / 1000:g} t）", st["body"]))
    story.append(Spacer(1, 3 * mm))
    if manifest.reject_reason:
        story.append(_p(f"拒收原因：{manifest.reject_reason}", st["body"]))
    flags = []
    if manifest.discrepant:
        flags.append("接收量与转移量差异超出允许范围")
    if manifest.is_overdue(printed_at):
        flags.append("超期未接收")
    if manifest.late_entry:
        flags.append("补录超期")
    if flags:
        story.append(_p("提示：" + "；".join(flags), st["body"]))

    story.append(_p("流转记录", st["h2"]))
    for event in manifest.events:
        who = event.organization_name or "系统"
        story.append(
            _p(
                f"{_t(event.at)}  {ACTION_ZH.get(event.action, event.action)}  {who}（{event.actor}）",
                ParagraphStyle("event", parent=st["cell"], fontSize=8.5, leading=12),
            )
        )
    if manifest.signatures:
        story.append(_p("电子签名", st["h2"]))
        for signature in manifest.signatures:
            party = PARTY_SIGN_ZH.get(signature.party, signature.party)
            if signature.step == "pickup" and signature.party == "consignor":
                party += "（交接）"
            story.append(
                _p(
                    f"{ACTION_ZH.get(signature.step, signature.step)} · {party}：{signature.signer_name}"
                    f"（{signature.organization_name}）  {_t(signature.signed_at)}  "
                    f"{METHOD_ZH.get(signature.method, signature.method)}",
                    ParagraphStyle("signature", parent=st["cell"], fontSize=8.5, leading=12),
                )
            )
            story.append(_p(f"内容 SHA-256：{signature.content_sha256}", st["detail"]))
    story.append(Spacer(1, 6 * mm))
    signatures = [
        _p(f"{role}：______________________    日期：____________", st["body"])
        for role in ("移出人（签章）", "承运人（签章）", "接受人（签章）")
    ]
    story.append(KeepTogether([x for s in signatures for x in (s, Spacer(1, 5 * mm))]))

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(MARGIN, 10 * mm, FOOTER)
        canvas.drawRightString(width - MARGIN, 10 * mm, f"{manifest.number}  第 {document.page} 页")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
