"""Resident ID numbers (GB 11643, RULES R7.1), unified social credit codes (GB 32100, R7.3),
sex codes (GB/T 2261.1, R7.2) and phone numbers (E.164, R7.5).

Pure functions: they take strings and return values or raise ``IdentifierError`` with a message
a registration clerk can act on. We lean on python-stdnum for the check-character arithmetic and the
area-code table, and add what it does not do: 15→18 conversion, the sex/birth-date cross-check, and
errors in words a person can fix.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc


class IdentifierError(ValueError):
    """An identifier that cannot be accepted; ``str(err)`` says what to fix (zh + en)."""


# R7.2 — GB/T 2261.1 sex codes.
SEX_UNKNOWN, SEX_MALE, SEX_FEMALE, SEX_UNSPECIFIED = "0", "1", "2", "9"
SEX_CODES = {SEX_UNKNOWN, SEX_MALE, SEX_FEMALE, SEX_UNSPECIFIED}
SEX_TO_FHIR = {SEX_MALE: "male", SEX_FEMALE: "female", SEX_UNKNOWN: "unknown", SEX_UNSPECIFIED: "other"}
FHIR_TO_SEX = {"male": SEX_MALE, "female": SEX_FEMALE, "unknown": SEX_UNKNOWN, "other": SEX_UNSPECIFIED}
SEX_WORDS = {"男": SEX_MALE, "女": SEX_FEMALE, "m": SEX_MALE, "f": SEX_FEMALE}


def normalize_sex(value: str | None) -> str:
    """Accept a GB/T 2261.1 code, 男/女, or a FHIR gender; return the GB/T code (R7.2)."""
    if value is None or str(value).strip() == "":
        return SEX_UNKNOWN
    v = str(value).strip().lower()
    if v in SEX_CODES:
        return v
    if v in SEX_WORDS:
        return SEX_WORDS[v]
    if v in FHIR_TO_SEX:
        return FHIR_TO_SEX[v]
    raise IdentifierError(f"性别代码无效 / invalid sex code: {value!r} (use 0, 1, 2, 9, 男 or 女)")


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A validated 18-character resident ID number and what it encodes (R7.1)."""

    number: str
    birth_date: dt.date
    sex: str  # GB/T 2261.1: odd sequence → 1 male, even → 2 female
    area_code: str
    converted_from_15: bool = False


def upgrade_15_to_18(number15: str) -> str:
    """R7.1: a first-generation 15-digit ID has a 2-digit year (19xx) and no check character."""
    if len(number15) != 15 or not (number15.isascii() and number15.isdigit()):
        raise IdentifierError("15位身份证号应为15位数字 / a 15-digit ID must be 15 digits")
    body = number15[:6] + "19" + number15[6:]
    return body + ric.calc_check_digit(body + "0")


def parse_resident_id(
    raw: str,
    *,
    expected_sex: str | None = None,
    expected_birth_date: dt.date | None = None,
    today: dt.date | None = None,
) -> ResidentId:
    """Validate a resident ID (R7.1): length, digits, ISO 7064 MOD 11-2 check character, a real birth
    date not in the future, an area code known to GB/T 2260, and — when given — agreement with the
    sex and birth date registered alongside it. 15-digit numbers are converted to 18."""
    # NFKC: full-width characters typed with a Chinese input method become ASCII (１２Ｘ → 12X).
    number = ric.compact(unicodedata.normalize("NFKC", raw or "")).replace("x", "X")
    if not number.isascii():  # full-width or other-script digits pass isdigit() but are not an ID
        raise IdentifierError("身份证号只能包含半角数字和X / ID number may only contain digits 0-9 and X")
    converted = False
    if len(number) == 15:
        number = upgrade_15_to_18(number)
        converted = True
    if len(number) != 18:
        raise IdentifierError(f"身份证号应为18位（或15位）/ ID number must have 18 (or 15) characters, got {len(number)}")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise IdentifierError("身份证号前17位应为数字，末位为数字或X / first 17 must be digits, last a digit or X")
    if number[-1] != ric.calc_check_digit(number):
        raise IdentifierError("身份证号校验位错误，请核对每一位 / ID check character is wrong: re-check every digit")
    try:
        birth = ric.get_birth_date(number)
    except stdnum_errors.ValidationError:
        raise IdentifierError("身份证号中的出生日期不存在 / the birth date inside the ID is not a real date") from None
    if birth > (today or dt.date.today()) or birth.year < 1880:
        raise IdentifierError("身份证号中的出生日期不合理 / the birth date inside the ID is out of range")
    if not area_code_known(number[:6]):
        raise IdentifierError("身份证号地区码不存在 / the ID's area code is unknown")
    sex = SEX_MALE if int(number[16]) % 2 == 1 else SEX_FEMALE
    if expected_sex in (SEX_MALE, SEX_FEMALE) and expected_sex != sex:
        raise IdentifierError("登记的性别与身份证号不符 / registered sex does not match the ID number")
    if expected_birth_date is not None and expected_birth_date != birth:
        raise IdentifierError("登记的出生日期与身份证号不符 / registered birth date does not match the ID number")
    return ResidentId(number=number, birth_date=birth, sex=sex, area_code=number[:6], converted_from_15=converted)


@lru_cache(maxsize=8192)
def area_code_known(code: str) -> bool:
    """Is this a GB/T 2260 county code that has ever existed? python-stdnum's ``get_birth_place``
    also demands the county existed in the birth year, which rejects real people registered after a
    county was created or renamed (an ID's area is where it was issued, not where one was born)."""
    from stdnum import numdb

    info = {k: v for _part, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    return "county" in info


def make_resident_id(area_code: str, birth: dt.date, sequence: int) -> str:
    """Build a valid 18-character ID (used by the synthetic district; odd sequence = male)."""
    body = f"{area_code}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def validate_uscc(raw: str) -> str:
    """R7.3: 统一社会信用代码 — 18 characters, GB 32100 mod-31 check character."""
    code = (raw or "").strip().upper()
    try:
        return uscc.validate(code)
    except stdnum_errors.InvalidLength:
        raise IdentifierError("统一社会信用代码应为18位 / credit code must be 18 characters") from None
    except stdnum_errors.InvalidChecksum:
        raise IdentifierError("统一社会信用代码校验位错误 / credit code check character is wrong") from None
    except stdnum_errors.ValidationError:
        raise IdentifierError("统一社会信用代码格式错误 / credit code has invalid characters") from None


def make_uscc(body17: str) -> str:
    """Append the GB 32100 check character to a 17-character body (synthetic data)."""
    return body17 + uscc.calc_check_digit(body17)


def normalize_phone(raw: str, region: str = "CN") -> str:
    """R7.5: normalise a phone number to E.164 (+86...); raise if it cannot be a real number."""
    text = (raw or "").strip()
    if not text:
        raise IdentifierError("电话号码为空 / phone number is empty")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise IdentifierError(f"无法识别的电话号码 / not a phone number: {text!r}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise IdentifierError(f"电话号码无效 / phone number is not valid: {text!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
