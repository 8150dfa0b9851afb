"""The web UI through HTTP (TestClient): language, sign-in, search with masking, the audited 403 and
break-the-glass, the admin-only audit log, logout. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from onetrip.access import service as access
from onetrip.access.models import BreakGlass
from onetrip.api import i18n
from onetrip.api.deps import COOKIE
from onetrip.api.web import safe_next
from onetrip.audit.models import AuditEvent
from onetrip.auth.service import create_user
from onetrip.kit.identifiers import make_resident_id
from onetrip.kit.masking import mask_id_number, mask_phone
from onetrip.registry.models import User
from onetrip.web.routes import classify_query
from tests.factories import PASSWORD, register_patient, totp_code

_seq = itertools.count(101)


def new_id(birth: dt.date = dt.date(1982, 3, 14)) -> str:
    return make_resident_id("110101", birth, next(_seq))


def browser(app, lang: str | None = None) -> TestClient:
    """A fresh client (its own cookie jar), like a separate browser; redirects are not followed."""
    c = TestClient(app, follow_redirects=False)
    if lang:
        c.cookies.set(i18n.LANG_COOKIE, lang)
    return c


def signed_in(app, username: str, lang: str | None = None) -> TestClient:
    c = browser(app, lang)
    r = c.post("/ui/login", data={"username": username, "password": PASSWORD, "next": "/ui/",
                                  "totp": totp_code(username)})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/ui/"
    assert COOKIE in r.cookies
    return c


def audit_rows(db, **where) -> list[AuditEvent]:
    with db.session() as s:
        stmt = select(AuditEvent).order_by(AuditEvent.seq)
        for k, v in where.items():
            stmt = stmt.where(getattr(AuditEvent, k) == v)
        return list(s.scalars(stmt))


def person_id_of(db, record_id: str) -> str:
    from onetrip.persons.models import PatientRecord

    with db.session() as s:
        return s.get(PatientRecord, record_id).person_id


def user_id(db, username: str) -> str:
    with db.session() as s:
        return s.scalar(select(User.id).where(User.username == username))


# --- pure helpers (no database) --------------------------------------------------------------------

@pytest.mark.parametrize(("q", "kind"), [
    ("陈丽", "name"), ("chen li", "pinyin"), ("ChenLi", "pinyin"), ("110101198005171233", "identifier"),
    ("11010119800517123x", "identifier"), ("110101800517123", "identifier"), ("13800138000", "phone"),
    ("+86 138 0013 8000", "phone"), ("MRN0001", "mrn"),
])
def test_search_box_classifies_the_query(q, kind):
    assert classify_query(q)[0] == kind


def test_search_box_normalises_phone_and_id():
    assert classify_query("138-0013-8000")[1].phone == "+8613800138000"
    assert classify_query("11010119800517123x")[1].identifier == "11010119800517123X"
    assert len(classify_query("110101800517123")[1].identifier) == 18  # 15 → 18


@pytest.mark.parametrize(("target", "expected"), [
    ("/ui/patients", "/ui/patients"), ("https://evil.example/", "/ui/"), ("//evil.example/ui", "/ui/"),
    ("/api/me", "/ui/"), ("", "/ui/"), ("/ui\\..\\x", "/ui/"),
])
def test_next_stays_inside_the_ui(target, expected):
    assert safe_next(target) == expected


def test_every_ui_string_has_a_chinese_translation():
    catalog = i18n.translations("zh_CN")
    missing = []
    for m in i18n.extract_messages():
        if not m.id:
            continue
        msgid = m.id[0] if isinstance(m.id, tuple) else m.id
        if catalog.gettext(msgid) == msgid:
            missing.append(msgid)
    assert not missing, f"add these to a .po file in locale/zh_CN/LC_MESSAGES/ (messages.po or the capability's own): {missing}"


def test_service_messages_are_split_by_language():
    msg = "用户名或密码错误 / wrong user name or password"
    assert i18n.pick(msg, "zh_CN") == "用户名或密码错误"
    assert i18n.pick(msg, "en") == "wrong user name or password"
    assert i18n.pick("甲 / a；乙 / b", "en") == "a; b"
    assert i18n.pick("甲 / a；乙 / b", "zh_CN") == "甲；乙"
    assert i18n.pick("紧急访问（须填写理由）/ break-the-glass", "en") == "break-the-glass"
    assert i18n.pick("only one language", "en") == "only one language"


# --- pages -----------------------------------------------------------------------------------------

def test_static_assets_are_served_locally(client):
    r = client.get("/static/js/htmx.min.js")
    assert r.status_code == 200 and r.text.startswith("var htmx")
    assert client.get("/static/css/app.css").status_code == 200


def test_login_page_is_chinese_by_default(app):
    r = browser(app).get("/ui/login", headers={"Accept-Language": "en-US,en"})
    assert r.status_code == 200
    assert '<html lang="zh-CN">' in r.text
    assert "登录" in r.text and "用户名" in r.text and "OneTrip 医共体平台" in r.text
    assert "Sign in" not in r.text


def test_login_page_in_english_with_lang_and_the_choice_sticks(app):
    c = browser(app)
    r = c.get("/ui/login?lang=en")
    assert r.status_code == 200
    assert '<html lang="en">' in r.text and "Sign in" in r.text and "User name" in r.text
    assert r.cookies.get(i18n.LANG_COOKIE) == "en"
    c.cookies.set(i18n.LANG_COOKIE, "en")
    assert "Sign in" in c.get("/ui/login").text
    r = c.get("/ui/login?lang=zh")
    assert "登录" in r.text and r.cookies.get(i18n.LANG_COOKIE) == "zh_CN"


def test_pages_require_sign_in(app, world):
    r = browser(app).get("/ui/patients")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_wrong_password_shows_an_error_in_the_current_language(app, world):
    c = browser(app)
    r = c.post("/ui/login", data={"username": world.users["doc_a"], "password": "nope"})
    assert r.status_code == 400
    assert "用户名或密码错误" in r.text and "wrong user name" not in r.text
    assert COOKIE not in r.cookies
    r = c.post("/ui/login?lang=en", data={"username": world.users["doc_a"], "password": "nope"})
    assert "wrong user name or password" in r.text and "用户名或密码错误" not in r.text
    r = c.post("/ui/login?lang=zh", data={"username": "", "password": ""})
    assert r.status_code == 400 and "请输入用户名和密码" in r.text


def test_a_lockout_looks_like_a_wrong_password_but_is_audited(app, db, world):
    """Issue 26: a locked account answers exactly like a wrong password (no hint that the name exists); the audit
    row says what happened. The lock is for this address only (tests/security/test_signin.py)."""
    from onetrip.auth.throttle import address_key
    from onetrip.registry.models import LoginThrottle

    with db.session() as s:
        create_user(s, "locky", PASSWORD, ["clinician"], "Locky", world.org_a)
        s.commit()
    c = TestClient(app, follow_redirects=False, client=("10.40.0.1", 50000))
    for _ in range(5):
        wrong = c.post("/ui/login", data={"username": "locky", "password": "wrong-password"})
        with db.session() as s:  # let the address's progressive delay pass instead of sleeping through it
            s.execute(update(LoginThrottle).where(LoginThrottle.key == address_key("10.40.0.1"))
                      .values(next_allowed_at=None))
            s.commit()
    r = c.post("/ui/login", data={"username": "locky", "password": PASSWORD})
    assert r.status_code == wrong.status_code == 400
    assert "用户名或密码错误" in r.text and 'value="locky"' in r.text
    assert rows_for(db, "locky", "login")[-1].outcome_desc == "locked for this address"


def rows_for(db, name: str, subtype: str) -> list[AuditEvent]:
    return audit_rows(db, agent_name=name, subtype=subtype)


def test_a_sign_in_goes_to_next_but_never_off_site(app, world):
    c = browser(app)
    r = c.post("/ui/login", data={"username": world.users["doc_a"], "password": PASSWORD,
                                  "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and cookie.startswith(COOKIE)


def test_home_shows_who_and_where(app, world):
    c = signed_in(app, world.users["doc_a"])
    r = c.get("/ui/")
    assert r.status_code == 200
    assert world.users["doc_a"] in r.text and "测试总院" in r.text and "医共体总院" in r.text
    assert "退出登录" in r.text and "English" in r.text
    assert 'href="/ui/audit"' not in r.text  # not an admin: no audit link
    assert r.headers["cache-control"] == "no-store"


def test_search_by_chinese_name_masks_the_id(app, db, world):
    idn, phone = new_id(), "+8613912345678"
    register_patient(db, world.org_a, name="王晓燕", id_number=idn, phone=phone, mrn="WEB-A-1")
    c = signed_in(app, world.users["doc_a"])
    r = c.get("/ui/patients", params={"q": "王晓燕"})
    assert r.status_code == 200
    assert "王晓燕" in r.text and "WEB-A-1" in r.text
    assert mask_id_number(idn) in r.text and idn not in r.text
    assert mask_phone(phone) in r.text and phone not in r.text and "13912345678" not in r.text
    assert "女" in r.text or "男" in r.text
    # the HTMX live search gets only the results fragment
    r = c.get("/ui/patients", params={"q": "wangxiao"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text and "王晓燕" in r.text and idn not in r.text
    # by ID and by phone
    assert "王晓燕" in c.get("/ui/patients", params={"q": idn}).text
    assert "王晓燕" in c.get("/ui/patients", params={"q": "139 1234 5678"}).text
    rows = [e for e in rows_for(db, world.users["doc_a"], "search-type") if e.source == "web"]
    assert rows and all(idn not in (e.query or "") for e in rows)


def test_a_bad_phone_is_explained(app, world):
    c = signed_in(app, world.users["doc_a"])
    r = c.get("/ui/patients", params={"q": "12345678901"})
    assert r.status_code == 200 and "电话号码无效" in r.text


def test_other_institution_patient_is_403_then_break_the_glass_opens_it(app, db, world):
    idn = new_id()
    rec = register_patient(db, world.org_a, name="赵静怡", id_number=idn, mrn="WEB-A-2")
    doc_b = world.users["doc_b"]
    c = signed_in(app, doc_b)

    # a name search at B does not find A's patient; an exact ID search offers break-the-glass
    hx = {"HX-Request": "true"}
    assert "赵静怡" not in c.get("/ui/patients", params={"q": "赵静怡"}, headers=hx).text
    r = c.get("/ui/patients", params={"q": idn}, headers=hx)
    assert "赵静怡" not in r.text and 'id="hidden-notice"' in r.text and "/ui/break-glass?person_id=" in r.text

    r = c.get(f"/ui/patients/{rec}")
    assert r.status_code == 403
    assert "赵静怡" not in r.text and "无权查看其他机构的患者信息" in r.text
    assert 'id="break-glass-form"' in r.text and "ETREAT" in r.text and "审核" in r.text
    denied = [e for e in audit_rows(db, entity_what=f"Patient/{rec}") if e.agent_name == doc_b]
    assert denied and denied[-1].outcome == "4" and denied[-1].subtype == "read"

    with db.session() as s:
        from onetrip.persons.models import PatientRecord

        person_id = s.get(PatientRecord, rec).person_id
    form = {"person_id": person_id, "reason_code": "ETREAT", "next": f"/ui/patients/{rec}"}
    r = c.post("/ui/break-glass", data={**form, "reason_text": "急"})
    assert r.status_code == 400 and "至少4个字" in r.text

    r = c.post("/ui/break-glass", data={**form, "reason_text": "急诊昏迷患者，需要过敏史"})
    assert r.status_code == 303 and r.headers["location"] == f"/ui/patients/{rec}"
    r = c.get(f"/ui/patients/{rec}")
    assert r.status_code == 200
    assert "赵静怡" in r.text and 'id="glass-banner"' in r.text and idn not in r.text
    allowed = [e for e in audit_rows(db, entity_what=f"Patient/{rec}") if e.agent_name == doc_b]
    assert allowed[-1].outcome == "0" and allowed[-1].purpose_of_use == "ETREAT"
    started = [e for e in rows_for(db, doc_b, "break-glass") if e.type_code == "110113"]
    assert started and started[-1].purpose_of_use == "ETREAT"

    # the person page works too; ending the access closes it again
    assert c.get(f"/ui/persons/{person_id}").status_code == 200
    with db.session() as s:
        bg = s.scalars(select(BreakGlass).where(BreakGlass.person_id == person_id)).one()
    r = c.post(f"/ui/break-glass/{bg.id}/end", data={"next": "/ui/patients"})
    assert r.status_code == 303
    assert c.get(f"/ui/patients/{rec}").status_code == 403


def test_own_record_shows_the_persons_other_records(app, db, world):
    idn = new_id()
    rec_a = register_patient(db, world.org_a, name="钱文博", id_number=idn, mrn="WEB-A-3")
    register_patient(db, world.org_b, name="钱文博", id_number=idn, mrn="WEB-B-3")
    c = signed_in(app, world.users["doc_a"])
    r = c.get(f"/ui/patients/{rec_a}")
    assert r.status_code == 200
    assert "WEB-A-3" in r.text and "WEB-B-3" in r.text and "测试分院" in r.text
    assert f'href="/ui/persons/{person_id_of(db, rec_a)}/results"' in r.text  # the shared-results timeline
    assert f'href="/ui/referrals/new?record_id={rec_a}"' in r.text and "转诊记录" in r.text
    assert mask_id_number(idn) in r.text and idn not in r.text
    r = c.get(f"/ui/patients/{rec_a}/reveal", params={"field": "id_number"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and idn in r.text


def test_unknown_patient_is_a_404_page(app, world):
    c = signed_in(app, world.users["doc_a"])
    r = c.get("/ui/patients/does-not-exist")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "患者记录不存在" in r.text


def test_directory_lists_the_medical_community(app, world):
    c = signed_in(app, world.users["doc_b"])
    r = c.get("/ui/directory")
    assert r.status_code == 200
    assert "测试医共体" in r.text and "测试总院" in r.text and "测试分院" in r.text
    assert "医共体总院" in r.text and "三级甲等" in r.text
    r = c.get("/ui/directory?lang=en")
    assert "Lead hospital" in r.text and "grade 3A" in r.text


def test_audit_log_is_for_admins_only(app, db, world):
    r = signed_in(app, world.users["doc_a"]).get("/ui/audit")
    assert r.status_code == 403 and "只有管理员可以查看审计日志" in r.text

    # something to review
    idn = new_id()
    rec = register_patient(db, world.org_a, name="孙雨桐", id_number=idn)
    with db.session() as s:
        from onetrip.auth.service import principal_for_user
        from onetrip.persons.models import PatientRecord

        user = s.scalar(select(User).where(User.username == world.users["doc_b"]))
        person_id = s.get(PatientRecord, rec).person_id
        bg = access.start_break_glass(s, principal_for_user(user, None), person_id, "PATSFTY", "夜间会诊需要用药记录")
        s.commit()

    admin = signed_in(app, world.users["admin"])
    r = admin.get("/ui/audit")
    assert r.status_code == 200
    assert 'id="audit-events"' in r.text and "夜间会诊需要用药记录" in r.text and "孙**" in r.text
    assert f"/ui/audit/break-glass/{bg.id}/review" in r.text
    assert "孙雨桐" not in r.text
    r = admin.get("/ui/audit", params={"outcome": "4"})
    assert r.status_code == 200 and "outcome-0" not in r.text
    r = admin.get("/ui/audit", params={"user": world.users["doc_b"], "page": "2"})
    assert r.status_code == 200
    r = admin.post("/ui/audit/verify", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "审计链完整" in r.text and "<html" not in r.text
    r = admin.post(f"/ui/audit/break-glass/{bg.id}/review", data={"outcome": "justified", "note": "已核实"})
    assert r.status_code == 303
    admin_id = user_id(db, world.users["admin"])
    with db.session() as s:
        reviewed = s.get(BreakGlass, bg.id)
        assert reviewed.review_outcome == "justified" and reviewed.reviewed_by == admin_id
    assert f"/ui/audit/break-glass/{bg.id}/review" not in admin.get("/ui/audit").text


def test_cross_site_posts_are_refused(app, world):
    c = signed_in(app, world.users["admin"])
    r = c.post("/ui/audit/verify", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_logout_ends_the_session(app, db, world):
    c = signed_in(app, world.users["doc_a"])
    old = c.cookies.get(COOKIE)
    assert c.get("/ui/").status_code == 200
    r = c.post("/ui/logout")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] or "max-age=0" in r.headers["set-cookie"].lower()
    assert rows_for(db, world.users["doc_a"], "logout")
    replay = browser(app)
    replay.cookies.set(COOKIE, old)
    r = replay.get("/ui/")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    assert replay.get("/api/me", headers={"Authorization": f"Bearer {old}"}).status_code == 401


def test_verify_without_htmx_renders_the_whole_page(app, world):
    admin = signed_in(app, world.users["admin"])
    r = admin.post("/ui/audit/verify")
    assert r.status_code == 200 and "审计链完整" in r.text and 'id="audit-events"' in r.text


def test_an_active_user_gets_a_fresh_token_cookie(app, world):
    import jwt

    from onetrip.config import get_settings

    c = signed_in(app, world.users["doc_a"])
    claims = jwt.decode(c.cookies.get(COOKIE), options={"verify_signature": False})
    ttl = claims["exp"] - claims["iat"]
    claims["iat"] -= ttl * 3 // 4  # three quarters of its life are gone
    claims["exp"] -= ttl * 3 // 4
    aged = jwt.encode(claims, get_settings().secret_key, algorithm="HS256")
    c.cookies.set(COOKIE, aged)
    r = c.get("/ui/")
    assert r.status_code == 200
    fresh = r.cookies.get(COOKIE)
    assert fresh and fresh != aged
    assert jwt.decode(fresh, options={"verify_signature": False})["exp"] > claims["exp"]
