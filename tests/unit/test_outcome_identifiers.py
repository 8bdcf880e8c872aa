"""The numbers on the outcome's documents: the patient's PESEL, the doctor's licence number,
the employer's NIP, a package's or referral's key and access code."""

from __future__ import annotations

from datetime import date

import pytest

from consult.errors import Invalid
from consult.outcome.keys import is_access_code, is_key, new_access_code, new_key
from consult.outcome.licence import check_licence, make_licence
from consult.outcome.pesel import make_pesel, parse_pesel
from consult.outcome.sick_leave import check_nip


def _with_check_digit(first_ten: str) -> str:
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    total = sum(int(d) * w for d, w in zip(first_ten, weights, strict=True))
    return first_ten + str((10 - total % 10) % 10)


@pytest.mark.parametrize(
    ("number", "born", "sex"),
    [
        # The registry's own worked example: a woman born on 8 July 1902.
        ("02070803628", date(1902, 7, 8), "female"),
        ("44051401359", date(1944, 5, 14), "male"),
        # Born in 2002: the month is 07 + 20.
        ("02271409867", date(2002, 7, 14), "female"),
        # Born in the 1800s: the month is 12 + 80.
        ("50920100759", date(1850, 12, 1), "male"),
        # A leap day.
        (_with_check_digit("0022290123"), date(2000, 2, 29), "male"),
    ],
)
def test_a_valid_pesel_gives_the_date_of_birth_and_sex(number: str, born: date, sex: str) -> None:
    pesel = parse_pesel(f" {number} ")
    assert (pesel.number, pesel.born, pesel.sex) == (number, born, sex)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4405140135", "pesel_invalid_length"),
        ("440514013590", "pesel_invalid_length"),
        ("", "pesel_not_digits"),
        ("4405140135X", "pesel_not_digits"),
        ("4405 140135", "pesel_not_digits"),
        ("٤٤٠٥١٤٠١٣٥٩", "pesel_not_digits"),  # Arabic-Indic digits are digits to str.isdigit
        ("44051401358", "pesel_bad_checksum"),
        ("44051401395", "pesel_bad_checksum"),  # two digits swapped
        (_with_check_digit("4413140135"), "pesel_bad_date"),  # month 13
        (_with_check_digit("0102290135"), "pesel_bad_date"),  # 29 February 1901
        (_with_check_digit("4404310135"), "pesel_bad_date"),  # 31 April
        (_with_check_digit("4405000135"), "pesel_bad_date"),  # day 0
    ],
)
def test_an_invalid_pesel_says_why(number: str, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_pesel(number)
    assert refused.value.code == code


def test_a_pesel_born_in_the_future_is_refused_given_today() -> None:
    tomorrow = make_pesel(date(2026, 12, 8), 1, "female")
    assert parse_pesel(tomorrow).born == date(2026, 12, 8)
    with pytest.raises(Invalid) as refused:
        parse_pesel(tomorrow, today=date(2026, 12, 7))
    assert refused.value.code == "pesel_bad_date"


def test_made_pesels_are_valid_for_any_day_and_serial() -> None:
    for born in (date(1800, 1, 1), date(1999, 12, 31), date(2024, 2, 29), date(2299, 12, 31)):
        for serial in (0, 7, 999):
            for sex in ("female", "male"):
                pesel = parse_pesel(make_pesel(born, serial, sex))  # type: ignore[arg-type]
                assert (pesel.born, pesel.sex) == (born, sex)


def test_the_licence_number_check_digit_is_the_medical_chamber_rule() -> None:
    # The chamber's worked example: digits 4 2 5 7 4 0 weigh 71, and 71 mod 11 = 5.
    assert check_licence("5425740") == "5425740"
    # Digits 0 0 0 0 0 1 weigh 1 * 6 = 6.
    assert check_licence(" 6000001 ") == "6000001"
    assert make_licence(1) == "6000001"


def test_every_made_licence_number_is_valid() -> None:
    made = {make_licence(body) for body in range(0, 1_000_000, 9973)}
    assert all(check_licence(number) == number for number in made)
    assert len(made) > 90


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("542574", "licence_invalid_format"),
        ("54257400", "licence_invalid_format"),
        ("0425740", "licence_invalid_format"),  # never starts with 0
        ("54257a0", "licence_invalid_format"),
        ("1425740", "licence_bad_checksum"),
        ("5425741", "licence_bad_checksum"),
        ("5245740", "licence_bad_checksum"),  # two digits swapped
    ],
)
def test_an_invalid_licence_number_says_why(number: str, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_licence(number)
    assert refused.value.code == code


def test_a_body_whose_check_would_be_10_makes_no_licence_number() -> None:
    # 2 * 5 = 10: no first digit makes "?000020" valid.
    for first in "123456789":
        with pytest.raises(Invalid):
            check_licence(f"{first}000020")


@pytest.mark.parametrize("number", ["1234563218", "526-025-02-74", "774 000 14 54"])
def test_a_valid_nip_is_kept_as_ten_digits(number: str) -> None:
    assert check_nip(number) == number.replace("-", "").replace(" ", "")


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("123456321", "nip_invalid_format"),
        ("12345632189", "nip_invalid_format"),
        ("PL1234563218", "nip_invalid_format"),
        ("1234563217", "nip_bad_checksum"),
        ("2134563218", "nip_bad_checksum"),
    ],
)
def test_an_invalid_nip_says_why(number: str, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_nip(number)
    assert refused.value.code == code


def test_keys_are_44_digits_and_codes_4_digits_all_different() -> None:
    keys = [new_key() for _ in range(10_000)]
    codes = [new_access_code() for _ in range(10_000)]
    assert all(len(k) == 44 and k.isdigit() and is_key(k) for k in keys)
    assert all(len(c) == 4 and c.isdigit() and is_access_code(c) for c in codes)
    assert len(set(keys)) == len(keys)
    # 10 000 draws of 10 000 codes: most values appear, so they are not a short cycle.
    assert len(set(codes)) > 5_000
    # Every digit appears in every position of the keys: leading zeros are kept, not dropped.
    assert all({k[i] for k in keys} == set("0123456789") for i in range(44))


@pytest.mark.parametrize("value", ["", "123", "12345", "12a4", " 1234", "١٢٣٤"])
def test_a_malformed_access_code_is_not_one(value: str) -> None:
    assert not is_access_code(value)
    assert not is_key(value * 11)
