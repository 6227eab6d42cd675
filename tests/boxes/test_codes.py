from hypothesis import given
from hypothesis import strategies as st

from app.boxes import codes

BODY = st.text(alphabet=codes.ALPHABET, min_size=5, max_size=5)
COUNTY = st.sampled_from(["331002", "331023", "331081", None])


@given(COUNTY, BODY)
def test_generated_codes_normalise_to_themselves(county, body):
    code = codes.make_code(county, body)
    assert codes.normalise(code) == code
    assert codes.normalise(code.lower().replace("-", "")) == code


@given(COUNTY, BODY, st.integers(min_value=0, max_value=7), st.sampled_from(codes.ALPHABET))
def test_every_single_character_error_is_caught(county, body, position, replacement):
    code = codes.make_code(county, body).replace("-", "")
    if code[position] == replacement:
        return
    typo = code[:position] + replacement + code[position + 1 :]
    assert codes.normalise(typo) is None


@given(COUNTY, BODY, st.integers(min_value=0, max_value=6))
def test_adjacent_swaps_in_the_body_are_caught(county, body, position):
    code = codes.make_code(county, body).replace("-", "")
    if code[position] == code[position + 1]:
        return
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    assert codes.normalise(swapped) is None
