"""UI language: zh_CN by default, English on request.

Source strings are English (``_("...")`` in templates and here). Catalogues are plain ``.po`` files under
``locale/<lang>/LC_MESSAGES/``: ``messages.po`` for the spine and one file per capability (``referral.po``,
``family.po``, …) so each capability owns its strings; all are merged, read at start-up with Babel and
compiled in memory — no ``.mo`` is committed. Service messages already come as "中文 / English"; :func:`pick` keeps the half that
matches the UI language.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from onetrip.kit.clock import LOCAL_TZ, as_utc
from onetrip.kit.masking import mask_id_number, mask_name, mask_phone
from onetrip.registry.models import ORG_TYPE_LABELS

HERE = Path(__file__).parent.parent / "web"  # templates and catalogues stay beside the pages
LOCALE_DIR = HERE / "locale"
TEMPLATES = HERE / "templates"
LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANG_COOKIE = "lang"


def normalize_locale(value: str | None) -> str | None:
    """'en', 'en-US', 'EN_gb' → 'en'; 'zh', 'zh-CN', 'zh_cn' → 'zh_CN'; anything else → None."""
    v = (value or "").strip().replace("-", "_").lower()
    if v.startswith("en"):
        return "en"
    if v.startswith("zh"):
        return "zh_CN"
    return None


def catalog_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


@lru_cache(maxsize=8)
def translations(locale: str) -> NullTranslations:
    """A gettext object for ``locale``, compiled in memory from its ``.po`` files (fuzzy entries ignored)."""
    path = catalog_path(locale)
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=locale, domain="messages")
    for extra in sorted(path.parent.glob("*.po")):
        if extra == path:
            continue
        with extra.open("rb") as f:
            for message in read_po(f, locale=locale, domain="messages"):
                if message.id and catalog.get(message.id) is None:
                    catalog[message.id] = message
    buf = BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain="messages")


def gettext(locale: str, message: str, **variables: object) -> str:
    text = translations(locale).gettext(message)
    return text % variables if variables else text


_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_SPLIT = re.compile(r"\s?/\s")  # "中文 / English", also "中文）/ English"


def pick(message: str, locale: str) -> str:
    """Keep one language of a "中文 / English" service message (parts joined by "；" each split)."""
    if not message:
        return ""
    parts = []
    for part in message.split("；"):
        m = _SPLIT.search(part)
        if m and _CJK.search(part[: m.start()]):
            parts.append((part[m.end():] if locale == "en" else part[: m.start()]).strip())
        else:
            parts.append(part.strip())
    return ("; " if locale == "en" else "；").join(p for p in parts if p)


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


# --- catalogue maintenance -------------------------------------------------------------------------

EXTRACT_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "tr": (2,)}


def extract_messages():
    """Every UI string of the templates, of the web package's Python and of the HTTP kit's (this module's
    display helpers, api/web.py's error titles) — ``_``, ``ngettext``, ``N_``, ``tr(request, ...)`` — as a
    Babel catalogue template."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    template = Catalog(project="onetrip", domain="messages")
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                     "lstrip_blocks": "true"}}
    sources = [(HERE, method_map, options), (Path(__file__).parent, [("**.py", "python")], {})]
    for directory, methods, options_map in sources:
        for filename, lineno, message, comments, context in extract_from_dir(
                str(directory), methods, options_map=options_map, keywords=EXTRACT_KEYWORDS):
            template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def update_catalog(locale: str = "zh_CN") -> Path:
    """Merge newly extracted strings into ``locale``'s .po (new ones untranslated, changed ones fuzzy):
    ``python -c "from onetrip.api.i18n import update_catalog; update_catalog()"``, then translate."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    path = catalog_path(locale)
    if path.exists():
        with path.open("rb") as f:
            catalog = read_po(f, locale=locale, domain="messages")
    else:
        catalog = Catalog(locale=locale, project="onetrip", domain="messages")
    catalog.update(extract_messages())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=110, omit_header=False, ignore_obsolete=True)
    translations.cache_clear()
    environment.cache_clear()
    return path


# --- display helpers (template filters) ------------------------------------------------------------

SEX = {"0": N_("Unknown"), "1": N_("Male"), "2": N_("Female"), "9": N_("Unspecified")}
ORG_TYPE_EN = {
    "bureau": "Health bureau", "lead_hospital": "Lead hospital", "district_hospital": "District hospital",
    "branch_centre": "Community health centre / branch", "station": "Health station / village clinic",
    "public_health": "Public-health institution",
}
GRADE_ZH = {"3A": "三级甲等", "3B": "三级乙等", "3C": "三级丙等", "3": "三级", "2A": "二级甲等", "2B": "二级乙等",
            "2C": "二级丙等", "2": "二级", "1A": "一级甲等", "1B": "一级乙等", "1C": "一级丙等", "1": "一级",
            "none": "未定级"}


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return as_utc(value).astimezone(LOCAL_TZ).strftime(fmt)


def iso_date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


@lru_cache(maxsize=8)
def environment(locale: str) -> Environment:
    """One Jinja2 environment per language, with gettext installed (newstyle: ``_("%(n)s", n=1)``)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)
    tr = translations(locale)

    def sex_label(code: str | None) -> str:
        return tr.gettext(SEX.get(code or "0", "Unknown"))

    def org_type_label(code: str | None) -> str:
        if locale == "en":
            return ORG_TYPE_EN.get(code or "", code or "")
        return ORG_TYPE_LABELS.get(code, code or "")  # type: ignore[call-overload]

    def grade_label(code: str | None) -> str:
        if not code:
            return ""
        if locale == "en":
            return "ungraded" if code == "none" else f"grade {code}"
        return GRADE_ZH.get(code, code)

    env.filters.update(
        mask_id=mask_id_number, mask_phone=mask_phone, mask_name=mask_name, local_time=local_time,
        iso_date=iso_date, sex=sex_label, org_type=org_type_label, grade=grade_label,
        pick=lambda m: pick(m, locale),
    )
    env.globals.update(locale=locale, html_lang="zh-CN" if locale == "zh_CN" else "en")
    return env


def render(locale: str, template: str, **context: object) -> str:
    return environment(locale).get_template(template).render(**context)
