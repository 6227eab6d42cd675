"""The CJK font the PDFs embed: a GB 2312 (+ ASCII, Latin-1, punctuation and the symbols the
product uses) subset of WenQuanYi Micro Hei, TrueType outlines, Apache-2.0 (``LICENSE-wqy-microhei.txt``
beside it; built by ``scripts/build_cjk_font.sh``). It ships in the package, so a fresh machine
needs no system font; reportlab embeds a per-document subset of it (``FontFile2``), so every
viewer shows the Chinese text, Adobe's Asian font pack or not.

Pure reportlab, no Flask.
"""

from __future__ import annotations

import threading
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

CJK_FONT = "WQYMicroHei"
FONT_FILE = Path(__file__).with_name("wqy-microhei-gb2312.ttf")
_lock = threading.Lock()


def cjk_font() -> str:
    """Register the embedded CJK font once (per process) and return its reportlab name."""
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        with _lock:
            if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(CJK_FONT, str(FONT_FILE)))
    return CJK_FONT
