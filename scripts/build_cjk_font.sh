#!/usr/bin/env bash
# Build app/fonts/wqy-microhei-gb2312.ttf, the CJK font the PDFs embed (reportlab TTFont; it
# embeds a per-document subset of it). Run once by hand when the character set must grow; the
# result is committed, so neither the system font nor fontTools is needed at run time.
#
# Source: Debian's fonts-wqy-microhei (WenQuanYi Micro Hei, TrueType glyf outlines, Apache-2.0;
#   its licence text is app/fonts/LICENSE-wqy-microhei.txt).
# Needs:  apt-get install fonts-wqy-microhei ; fontTools in any Python (not a project dependency):
#   python3 -m venv /tmp/ft && /tmp/ft/bin/pip install fonttools && PYFTSUBSET=/tmp/ft/bin/pyftsubset scripts/build_cjk_font.sh
# Keeps: printable ASCII, Latin-1, every GB 2312 character, CJK/fullwidth punctuation, the
#   symbols the pages and PDFs use (³ · — … × ° ≤ ≥ − ₂ ⁻ etc.), and every non-ASCII character
#   that appears in app/ (templates, rule files, demo data, Python).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${SRC:-/usr/share/fonts/truetype/wqy/wqy-microhei.ttc}
PYFTSUBSET=${PYFTSUBSET:-pyftsubset}
OUT=app/fonts/wqy-microhei-gb2312.ttf
CHARS=$(mktemp)
trap 'rm -f "$CHARS"' EXIT
python3 - "$CHARS" <<'PY'
import pathlib, sys
chars = {chr(c) for c in range(0x20, 0x7F)} | {chr(c) for c in range(0xA0, 0x100)}
for hi in range(0xA1, 0xF8):          # GB 2312, EUC-CN rows 1-87
    for lo in range(0xA1, 0xFF):
        try:
            chars.add(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
ranges = [(0x2000, 0x206F), (0x2070, 0x209F), (0x2100, 0x214F), (0x2190, 0x21FF), (0x2200, 0x22FF),
          (0x2460, 0x24FF), (0x2500, 0x257F), (0x25A0, 0x25FF), (0x3000, 0x303F), (0xFF00, 0xFFEF)]
for a, b in ranges:
    chars |= {chr(c) for c in range(a, b + 1)}
for path in pathlib.Path("app").rglob("*"):
    if path.suffix in {".py", ".html", ".yaml", ".yml", ".json", ".csv", ".po"} and path.is_file():
        chars |= {ch for ch in path.read_text(encoding="utf-8", errors="ignore") if ord(ch) > 0x7F}
chars.discard("\ufeff")
pathlib.Path(sys.argv[1]).write_text("".join(sorted(chars)), encoding="utf-8")
print(f"{len(chars)} characters requested", file=sys.stderr)
PY
"$PYFTSUBSET" "$SRC" --font-number=0 --text-file="$CHARS" --output-file="$OUT" \
  --no-hinting --desubroutinize --layout-features='' --name-IDs='*' --name-legacy --name-languages='*' \
  --drop-tables+=DSIG,GSUB,GPOS,GDEF
ls -l "$OUT"
