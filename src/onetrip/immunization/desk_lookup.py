"""The desk finds a child by resident ID number (居民身份证号, GB 11643) through the person index.

The desk's search box takes the certificate QR, a Patient id — or an 18-character resident ID, checked with the
project's one identifier helper (kit.identifiers, R7.1: ISO 7064 MOD 11-2 check character) before anything is
looked up. The lookup is identity's audited search (records the caller may see: the own clinic's, or what
the access policy allows); the ID is shown masked in every message.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy.orm import Session

from onetrip.identity import service as identity
from onetrip.identity.schemas import SearchParams
from onetrip.kit.errors import BadRequest, NotFound
from onetrip.kit.identifiers import IdentifierError, parse_resident_id
from onetrip.kit.masking import mask_id_number
from onetrip.kit.principal import Principal

_RESIDENT_ID = re.compile(r"\d{17}[\dXx]")


def looks_like_resident_id(text: str) -> bool:
    """18 characters, 17 digits and a digit or X (full-width input from a Chinese IME included): a resident ID
    rather than a Patient id or a certificate QR."""
    return bool(_RESIDENT_ID.fullmatch(unicodedata.normalize("NFKC", text or "").strip()))


def record_by_resident_id(session: Session, principal: Principal, text: str) -> str:
    """The Patient id of the child with this resident ID: the caller's own clinic's record first, else a record
    the access policy lets the caller see. A wrong check character → 400; nobody found → 404 (the search stays
    audited)."""
    try:
        number = parse_resident_id(text).number
    except IdentifierError as e:
        masked = mask_id_number(text.strip())
        raise BadRequest(f"身份证号无效（{masked}）/ invalid resident ID number ({masked})；{e}",
                         expression=["q"]) from None
    found = identity.search(session, principal, SearchParams(identifier=number, count=10),
                            query_text=f"identifier={mask_id_number(number)}")
    records = sorted(found.records, key=lambda r: r.organization_id != principal.organization_id)
    if not records:
        err = NotFound(f"未找到身份证号为 {mask_id_number(number)} 的已登记儿童：请先登记或扫描接种证 / no registered "
                       f"child with resident ID {mask_id_number(number)}: register the child or scan the "
                       f"vaccination certificate")
        err.commit_session = True  # the search was audited: keep that row
        raise err
    return records[0].id
