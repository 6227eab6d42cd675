"""The specialised QR encoder (app.labels.qr_encode) against segno's encoder and zxing-cpp's decoder.

segno is the oracle: fed the same data codewords, its module-by-module pipeline (codeword
interleaving and placement, mask 0, format and version information) must give exactly the symbol
the encoder's precomputed gather gives, in every version. The data codewords themselves are
checked by decoding with zxing-cpp.
"""

from __future__ import annotations

import io
import random
import string

import pytest
import segno
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from segno import consts
from segno import encoder as segno_encoder

from app.labels import qr_encode
from app.labels.qr import qr_matrix, qr_png

PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


def segno_symbol(codewords: bytes, version: int) -> tuple[bytes, ...]:
    """segno's symbol for these data codewords: its own Reed-Solomon, interleaving, placement,
    mask 0 and format/version information."""
    buff = segno_encoder.Buffer()
    for byte in codewords:
        buff.append_bits(byte, 8)
    buff = segno_encoder.make_final_message(version, consts.ERROR_LEVEL_M, buff)
    size = segno_encoder.calc_matrix_size(version)
    matrix = segno_encoder.make_matrix(size, size)
    segno_encoder.add_finder_patterns(matrix, size, size)
    segno_encoder.add_alignment_patterns(matrix, size, size)
    segno_encoder.add_codewords(matrix, buff, version)
    _, matrix = segno_encoder.find_and_apply_best_mask(matrix, size, size, 0)
    segno_encoder.add_format_info(matrix, version, consts.ERROR_LEVEL_M, 0)
    segno_encoder.add_version_info(matrix, version)
    return tuple(bytes(row) for row in matrix)


def decode(rows: tuple[bytes, ...]) -> list[str]:
    size, border, scale = len(rows), 4, 3
    total = size + 2 * border
    blank, pad = b"\x00" * total, b"\x00" * border
    grid = b"".join([blank] * border + [pad + r + pad for r in rows] + [blank] * border)
    img = Image.frombytes("L", (total, total), grid.translate(b"\xff\x00" + bytes(254)))
    img = img.resize((total * scale, total * scale), Image.Resampling.NEAREST)
    return [r.text for r in zxingcpp.read_barcodes(img)]


def test_every_version_matches_segno_and_decodes():
    rnd = random.Random(12)
    caps = qr_encode._capacities()
    for version in range(1, qr_encode.MAX_VERSION + 1):
        # the longest data of this version, and a length in the middle of it
        for n in {caps[version], (caps[version - 1] + caps[version]) // 2 + 1}:
            data = "".join(rnd.choice(PRINTABLE) for _ in range(n))
            got = qr_encode.encode_ascii(data)
            assert got is not None
            v, rows = got
            assert v == version and len(rows) == 17 + 4 * version
            assert rows == segno_symbol(qr_encode.data_codewords(data.encode(), v), v)
            if version <= 10 or version % 10 == 0:  # decoding big symbols is slow; RS is per block anyway
                assert decode(rows) == [data]


@settings(max_examples=60, deadline=None)
@given(data=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=120))
def test_random_ascii_matches_segno(data):
    v, rows = qr_encode.encode_ascii(data)
    assert rows == segno_symbol(qr_encode.data_codewords(data.encode(), v), v)
    # the same version segno picks for byte mode at level M
    assert v == segno.make(data, error="m", mode="byte", micro=False, boost_error=False).version


def test_reed_solomon_matches_segno():
    rnd = random.Random(3)
    for n_ec in sorted({g.num_total - g.num_data for v in range(1, 41) for g in consts.ECC[v][consts.ERROR_LEVEL_M]}):
        block = bytes(rnd.randrange(256) for _ in range(40))
        buff = segno_encoder.Buffer()
        for byte in block:
            buff.append_bits(byte, 8)
        _, ec_blocks = segno_encoder.make_blocks([consts.ECC[1][0][0]._replace(num_total=40 + n_ec, num_data=40)], buff)
        assert qr_encode.rs_remainder(block, n_ec) == bytes(ec_blocks[0])


def test_label_urls_decode():
    for i in range(30):
        url = f"https://tanxiang.tzhb.gov.cn/c/23-{i:05d}?v={i % 3 + 1}&s=4kt2nse5xwoymrfa"
        m = qr_matrix(url)
        assert (m.version, m.error, m.mask) == (4, "m", 0)  # 61 characters: version 4 holds 62
        assert decode(m.raw) == [url]


@pytest.mark.parametrize("data", ["台州碳箱码 https://tanxiang.tzhb.gov.cn", "x" * 2400])
def test_non_ascii_and_oversized_data_go_to_segno(data):
    assert qr_encode.encode_ascii(data) is None
    if len(data) > 2331:
        with pytest.raises(segno.DataOverflowError):
            qr_matrix(data)
    else:
        m = qr_matrix(data)
        assert m.mask == 0 and decode(m.raw) == [data]


@pytest.mark.parametrize("scale, border", [(8, 4), (1, 0), (3, 2), (5, 4), (13, 1)])
def test_png_pixels_are_the_modules(scale, border):
    url = "https://tanxiang.tzhb.gov.cn/c/23-ABCDE?v=1&s=4kt2nse5xwoymrfa"
    m = qr_matrix(url)
    img = Image.open(io.BytesIO(qr_png(url, scale=scale, border=border)))
    assert img.mode == "1"
    total = m.size + 2 * border
    assert img.size == (total * scale, total * scale)
    pixels = img.convert("L").load()
    for y in range(total * scale):
        for x in range(total * scale):
            mx, my = x // scale - border, y // scale - border
            dark = 0 <= mx < m.size and 0 <= my < m.size and m.raw[my][mx] == 1
            assert pixels[x, y] == (0 if dark else 255), (x, y)
