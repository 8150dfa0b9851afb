"""A deterministic synthetic district: institutions, staff, residents and each institution's registrations.

Everything here is fictional. The district (青溪区 of the invented 沧澜市), its streets, villages, hospitals
and people are made up; only the *formats* are real: resident ID numbers use one real GB/T 2260 county
code (``HOME_AREA_CODE``, taken from python-stdnum's table so the numbers validate) and a few others for
migrants; phone numbers are valid by libphonenumber's rules; credit codes carry a correct GB 32100 check
character. Names come from our own frequency-weighted lists rather than Faker, so output is fast (one
million residents in well under a minute of CPU) and does not change when Faker's data does.

Determinism: every draw comes from a ``random.Random`` seeded with a string derived from ``seed``; the
district's structure (institutions, staff) uses one stream and the residents another, so the institutions
do not depend on how many residents are asked for. Residents are generated household by household and
streamed (``District.iter_residents``), so a million of them never sit in memory at once.

Population: households of 1–5 (mean ≈2.6) built around an anchor drawn from a 2020-census-shaped age
pyramid (0–95; ≈16 % under 15, ≈20 % aged 60+); couples, children with the father's surname (90 %),
some grandparents; 5 % of households are migrants whose IDs carry another county's code. ≈10 % of
residents have no phone; children under 14 are reached on a parent's.

Registrations: 90 % of residents are registered at their street's centre, 45 % of those living where a
station is at that station, ≈40 % at one or two hospitals (mostly their own community's lead hospital).
Each institution registers residents independently (``Record``), and registration desks make mistakes.
The rates below are per record. They are plausible targets for testing the matcher, not measurements
from a real district:

- ``id_missing`` 8 %: no ID number taken (children, elderly without their card, emergencies).
- ``id_15`` 1.5 % of records of people born before 2000 whose ID is given (≈1 % of all records): the
  first-generation 15-digit form is written instead.
- ``birth_date_miskeyed`` 12.5 % of records without an ID (≈1 % of all records): day and month swapped,
  or where that makes no date, the last two digits of the year swapped (else one day off). Where the ID
  is given, the desk's cross-check (R7.1) would catch a wrong birth date, so these only occur without one.
- ``name_traditional`` ≈2 %: the name written in traditional characters (OpenCC s2t). Drawn for 2.8 %
  and flagged only where that changes the name (李娜 looks the same in both scripts; ≈70 % change).
- ``name_homophone`` 2 %: one given-name character replaced by a homophone (丽→莉, 伟→玮), where the
  name has one in our table (nearly all do).
- ``name_pinyin`` 0.5 % of station records: the name in pinyin only ("Wang Xiuying").
- ``phone_transposed`` 1.5 %: two adjacent digits of the mobile number swapped (still a valid number).
- ``phone_family`` 1.5 %: another household member's phone (transposed instead for people living alone).
- ``address_variant`` 5 %: the address written differently — street left out, the line abbreviated
  (翠湖小区3幢2单元501室 → 翠湖3-2-501, 柳塘村5组18号 → 柳塘5组), or province/city/district dropped.

At most one ID error, one name error, one phone error and one address error per record. Every record
keeps ``resident_index`` (the ground truth) for tests and for evaluating the matcher; the loader does not
write it to the database.
"""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import accumulate

import opencc
from pypinyin import lazy_pinyin

from onetrip.kit.identifiers import SEX_FEMALE, SEX_MALE, make_resident_id, make_uscc, normalize_phone

AS_OF = dt.date(2025, 6, 30)
"""The district's 'today': ages, birth dates and practice years are computed from this fixed date."""

HOME_AREA_CODE = "330122"
"""A real county code (GB/T 2260) used for every local resident's ID, so the IDs validate."""

MIGRANT_AREA_CODES = (
    "340123", "341004", "360681", "410225", "410527", "420281", "430181", "430726",
    "510183", "510521", "510725", "520323", "450521", "350502", "330424", "330226",
)  # fmt: skip

PROVINCE = "浙江省"
CITY = "沧澜市"  # invented
DISTRICT_NAME = "青溪区"  # invented
DISTRICT_NAME_EN = "Qingxi District"
PHONE_AREA = "571"

MIGRANT_HOUSEHOLD_SHARE = 0.05

RATES = {
    "id_missing": 0.08,
    "id_15": 0.015,  # conditional: ID given and born before 2000
    "birth_date_miskeyed": 0.125,  # conditional: ID missing
    "name_traditional": 0.028,  # drawn; ≈70 % of names change in traditional script → ≈2 % flagged
    "name_homophone": 0.02,
    "name_pinyin": 0.005,  # conditional: station records
    "phone_transposed": 0.015,
    "phone_family": 0.015,
    "address_variant": 0.05,
}
"""Per-record error rates (see the module docstring); conditional rates say on what."""

# Which institutions a resident is registered at.
P_HOME_CENTRE = 0.90
P_STATION = 0.45  # when the resident's village / estate has a station
P_HOSPITAL = 0.32  # +0.20 aged 60+, +0.10 under 6 → ≈40 % overall
P_SECOND_HOSPITAL = 0.15


# --------------------------------------------------------------------------------------------------
# Plain data


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    name: str  # 翠湖小区 / 柳塘村
    stem: str  # 翠湖 / 柳塘
    kind: str  # "estate" (小区, in a 街道) or "village" (村, in a 镇/乡)
    station_code: str | None


@dataclass(frozen=True, slots=True)
class Street:
    """A 街道 / 镇 / 乡 and the community health centre (or township health centre) serving it."""

    name: str
    name_en: str
    kind: str  # subdistrict | town | township
    weight: float  # share of the population
    community_code: str
    centre_code: str
    neighbourhoods: tuple[Neighbourhood, ...]


@dataclass(frozen=True, slots=True)
class Community:
    code: str
    name: str
    name_en: str
    lead_code: str


@dataclass(frozen=True, slots=True)
class Org:
    code: str
    name: str
    name_en: str
    org_type: str
    grade: str | None
    uscc: str
    licence_no: str | None
    address: str
    phone: str
    community_code: str | None
    parent_code: str | None
    street: str | None = None  # the street a centre or station serves


@dataclass(frozen=True, slots=True)
class Department:
    org_code: str
    code: str
    name: str
    specialty: str


@dataclass(frozen=True, slots=True)
class Practitioner:
    org_code: str
    department_code: str | None
    staff_no: str
    name: str
    sex: str
    title: str
    qualification: str  # physician | nurse | technician | pharmacist
    licence_no: str | None
    practice_since: dt.date
    phone: str


@dataclass(frozen=True, slots=True)
class Record:
    """One institution's registration of a resident, as the clerk typed it (errors included)."""

    resident_index: int  # ground truth; not stored in the database
    org_code: str
    mrn: str
    id_number: str | None  # 18 characters, the 15-digit old form, or None
    name: str
    sex: str
    birth_date: dt.date
    phone: str | None
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    address_line: str | None
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resident:
    index: int
    household: int
    name: str
    surname: str
    sex: str  # GB/T 2261.1: "1" male, "2" female
    birth_date: dt.date
    id_number: str
    phone: str | None
    province: str
    city: str
    district: str
    street: str
    address_line: str
    home_centre: str
    migrant: bool
    records: tuple[Record, ...]


@dataclass(frozen=True)
class District:
    seed: int
    residents: int
    area_code: str
    province: str
    city: str
    name: str
    name_en: str
    streets: tuple[Street, ...]
    communities: tuple[Community, ...]
    organizations: tuple[Org, ...]
    departments: tuple[Department, ...]
    practitioners: tuple[Practitioner, ...]
    mrn_starts: dict[str, int] = field(repr=False)

    def org(self, code: str) -> Org:
        return self._orgs_by_code[code]

    @cached_property
    def _orgs_by_code(self) -> dict[str, Org]:
        return {o.code: o for o in self.organizations}

    def iter_residents(self) -> Iterator[Resident]:
        """Stream the residents with their records; each call starts again from the same seed."""
        return _iter_residents(self)


# --------------------------------------------------------------------------------------------------
# Small helpers


class _Weighted:
    """Weighted choice by bisection on cumulative weights (faster than ``Random.choices`` per call)."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, pairs: Sequence[tuple[object, float]]):
        self.items = [p[0] for p in pairs]
        self.cum = list(accumulate(p[1] for p in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cum, rng.random() * self.total)]


def _pinyin_title(text: str) -> str:
    return "".join(lazy_pinyin(text)).capitalize()


@lru_cache(maxsize=1)
def _s2t() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


@lru_cache(maxsize=65536)
def _traditional(name: str) -> str:
    return _s2t().convert(name)


_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180",
    "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip


def _mobile(rng: random.Random) -> str:
    return f"+86{_MOBILE_PREFIXES[int(rng.random() * len(_MOBILE_PREFIXES))]}{rng.randrange(100_000_000):08d}"


def _landline(rng: random.Random) -> str:
    return normalize_phone(f"+86{PHONE_AREA}{rng.randint(2, 8)}{rng.randrange(10_000_000):07d}")


# --------------------------------------------------------------------------------------------------
# Names: surnames by national frequency (per cent), given names by generation and sex

_SURNAMES = _Weighted([
    ("王", 7.12), ("李", 7.00), ("张", 6.74), ("刘", 5.10), ("陈", 4.61), ("杨", 3.22), ("黄", 2.45),
    ("赵", 2.23), ("吴", 2.05), ("周", 1.91), ("徐", 1.67), ("孙", 1.54), ("马", 1.45), ("朱", 1.41),
    ("胡", 1.31), ("郭", 1.13), ("何", 1.12), ("林", 1.02), ("高", 1.00), ("罗", 0.99), ("郑", 0.95),
    ("梁", 0.89), ("谢", 0.82), ("宋", 0.74), ("唐", 0.73), ("许", 0.67), ("韩", 0.66), ("冯", 0.65),
    ("邓", 0.64), ("曹", 0.63), ("彭", 0.59), ("曾", 0.58), ("肖", 0.56), ("田", 0.54), ("董", 0.52),
    ("袁", 0.50), ("潘", 0.49), ("于", 0.48), ("蒋", 0.47), ("蔡", 0.46), ("余", 0.45), ("杜", 0.43),
    ("叶", 0.42), ("程", 0.41), ("苏", 0.40), ("魏", 0.39), ("吕", 0.38), ("丁", 0.37), ("任", 0.36),
    ("沈", 0.35), ("姚", 0.34), ("卢", 0.33), ("姜", 0.32), ("崔", 0.31), ("钟", 0.30), ("谭", 0.29),
    ("陆", 0.28), ("汪", 0.27), ("范", 0.26), ("金", 0.25), ("石", 0.24), ("廖", 0.23), ("贾", 0.22),
    ("夏", 0.21), ("韦", 0.20), ("付", 0.19), ("方", 0.18), ("白", 0.17), ("邹", 0.17), ("孟", 0.16),
    ("熊", 0.16), ("秦", 0.15), ("邱", 0.15), ("江", 0.15), ("尹", 0.14), ("薛", 0.14), ("闫", 0.13),
    ("段", 0.13), ("雷", 0.13), ("侯", 0.12), ("龙", 0.12), ("史", 0.12), ("陶", 0.11), ("黎", 0.11),
    ("贺", 0.11), ("顾", 0.10), ("毛", 0.10), ("郝", 0.10), ("龚", 0.10), ("邵", 0.10), ("万", 0.09),
    ("钱", 0.09), ("严", 0.09), ("覃", 0.09), ("武", 0.09), ("戴", 0.09), ("莫", 0.08), ("孔", 0.08),
    ("向", 0.08), ("汤", 0.08), ("欧阳", 0.03), ("司马", 0.01), ("上官", 0.005), ("诸葛", 0.005),
])  # fmt: skip

# Surname readings a clerk would type for pinyin-only registrations (pypinyin's default reading differs).
_SURNAME_PINYIN = {"曾": "zeng", "覃": "qin", "单": "shan", "区": "ou", "仇": "qiu", "解": "xie", "朴": "piao"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _GivenNames:
    singles: str
    fixed: tuple[str, ...]
    first: str
    second: str
    p_single: float

    def draw(self, rng: random.Random) -> str:
        r = rng.random()
        if r < self.p_single:
            return self.singles[int(rng.random() * len(self.singles))]
        if r < self.p_single + 0.35:
            return self.fixed[int(rng.random() * len(self.fixed))]
        a = self.first[int(rng.random() * len(self.first))]
        b = self.second[int(rng.random() * len(self.second))]
        return a + b if a != b else a


def _given(singles: str, fixed: str, first: str, second: str, p_single: float) -> _GivenNames:
    return _GivenNames(singles, tuple(fixed.split()), first, second, p_single)


# (era, sex) → pool. Eras by birth year: <1960, 1960–84, 1985–2004, 2005+.
_GIVEN = {  # singles, whole given names, first and second characters, share of one-character names
    ("old", SEX_MALE): _given(
        "国华明林军生福荣海平忠贵",
        "建国 建华 国强 国华 志明 志强 德明 德华 文华 永明 永福 福生 金生 根生 水生 有才 长林 振华 保国 卫国 "
        "国庆 和平 建设 立新 树林 春生 德胜 金海 宝山",
        "国建德志永金福长文振明庆春宝树", "华明林生财富贵荣海山发祥才义忠", 0.15,
    ),
    ("old", SEX_FEMALE): _given(
        "英兰珍芳梅凤秀",
        "秀英 桂英 秀兰 玉兰 桂兰 淑珍 凤英 玉珍 玉英 兰英 秀珍 桂珍 素珍 翠花 金凤 玉梅 秀芳 美华 爱华 月英 "
        "桂芳 玉芬 秀云 素英 淑英",
        "秀桂玉淑凤素翠金月美爱春彩", "英兰珍芳梅凤华芬云花琴娥", 0.12,
    ),
    ("mid", SEX_MALE): _given(
        "伟强磊军勇杰涛明超刚平辉斌鹏华峰俊波浩亮健飞林",
        "建军 建平 海涛 志刚 志勇 小明 晓东 建华 永强 国平 卫东 红军 建新 俊杰 海波 文斌 志华 伟东 立军 振宇",
        "建海志小晓永国卫文立振伟红俊新", "军平涛刚勇明东华强波斌峰辉林伟", 0.35,
    ),
    ("mid", SEX_FEMALE): _given(
        "芳娜敏静丽艳娟霞燕玲红英萍琴梅丹莉婷雪慧洁琳",
        "晓燕 丽娟 海燕 春梅 红梅 小红 丽华 美玲 秀梅 丽萍 晓红 雪梅 玉梅 艳红 静静 丽丽 芳芳 婷婷 晓丽 秀芳",
        "晓丽海春红小美秀雪艳玉慧彩", "燕娟梅红华玲萍丽霞琴芳英云敏", 0.35,
    ),
    ("young", SEX_MALE): _given(
        "浩宇鑫磊杰鹏超帅博洋亮凯晨昊强伟涛",
        "俊杰 子豪 浩然 宇航 天宇 家豪 志豪 明轩 文博 嘉豪 鹏飞 晓东 宇飞 振宇 天翔 家乐 子健 浩宇 俊豪 思远",
        "俊子浩宇天家志明文嘉鹏晓振思泽", "杰豪然航宇轩博飞翔乐健远鑫辉涛", 0.25,
    ),
    ("young", SEX_FEMALE): _given(
        "婷雪倩静颖琳佳欣悦晶璐慧洁丹莹",
        "婷婷 欣怡 佳怡 雨涵 思琪 梦琪 晓雪 诗涵 佳琪 雅婷 婉婷 雨欣 梦瑶 诗琪 静怡 晓婷 文静 佳慧 丽娜 思雨",
        "欣佳雨思梦晓诗雅婉静文丽可月雪", "怡涵琪雪婷欣瑶慧静妍雯琳颖悦晴", 0.25,
    ),
    ("child", SEX_MALE): _given(
        "睿宸轩哲航铭",
        "子轩 浩宇 宇轩 梓豪 浩然 一鸣 俊熙 子墨 宇泽 皓轩 铭泽 沐阳 奕辰 博文 梓睿 宇航 俊宇 浩轩 子睿 明哲",
        "子浩宇梓俊皓铭奕博沐一明锦承景", "轩宇豪然泽辰睿文阳熙墨航哲鸣川", 0.08,
    ),
    ("child", SEX_FEMALE): _given(
        "萱琪妍彤瑶",
        "一诺 欣怡 梓涵 诗涵 雨桐 可馨 语桐 若曦 梓萱 子涵 思涵 紫涵 依诺 佳怡 雨萱 芷若 沐晴 安然 欣妍 语汐",
        "梓雨欣诗可若语紫依佳芷沐思一子", "涵桐萱怡馨曦诺妍晴琪彤然汐瑶悦", 0.08,
    ),
}  # fmt: skip


def _era(year: int) -> str:
    if year < 1960:
        return "old"
    if year < 1985:
        return "mid"
    if year < 2005:
        return "young"
    return "child"


# Characters a clerk mishears or mistypes for one another (same or near reading, common in names).
_HOMOPHONES = {
    "丽": "莉俐励", "莉": "丽俐", "伟": "玮炜维", "芳": "方舫", "娜": "那", "敏": "民闽", "静": "婧晶靖",
    "秀": "绣", "英": "瑛莹", "兰": "岚蓝", "珍": "真贞", "梅": "玫媚", "凤": "峰", "华": "桦骅",
    "明": "铭鸣", "林": "琳霖麟", "军": "君均", "强": "蔷", "磊": "垒", "勇": "永泳", "杰": "洁婕捷",
    "涛": "滔韬", "超": "朝", "刚": "钢纲", "平": "萍苹", "辉": "晖徽", "斌": "彬滨", "鹏": "朋",
    "峰": "锋丰", "俊": "骏峻", "波": "博", "浩": "皓昊灏", "亮": "靓", "健": "建剑", "飞": "菲",
    "艳": "燕雁", "娟": "鹃", "霞": "侠", "燕": "艳雁", "玲": "琳铃", "红": "虹宏鸿", "萍": "平苹",
    "琴": "芹勤", "丹": "单", "婷": "亭庭", "雪": "学", "慧": "惠蕙", "洁": "杰婕", "琳": "林霖",
    "宇": "雨羽禹", "鑫": "欣馨", "博": "波柏", "洋": "阳扬", "凯": "恺锴", "晨": "辰琛", "昊": "浩皓",
    "倩": "茜", "颖": "莹影", "佳": "嘉家", "欣": "馨鑫昕", "悦": "越月", "晶": "静菁", "璐": "露路",
    "莹": "颖滢", "怡": "仪宜", "涵": "晗寒", "琪": "琦祺淇", "瑶": "遥尧", "妍": "研彦", "雯": "文",
    "晴": "情清", "轩": "萱宣", "然": "冉", "泽": "择", "辰": "晨", "睿": "锐瑞", "熙": "曦希",
    "哲": "喆", "航": "杭", "铭": "明鸣", "桐": "彤童", "萱": "轩宣", "馨": "欣鑫", "曦": "熙希",
    "彤": "桐", "汐": "夕溪", "梓": "子紫", "子": "梓紫", "紫": "子梓", "雨": "宇语", "语": "雨宇",
    "诗": "思", "思": "斯丝", "梦": "蒙", "雅": "亚娅", "婉": "宛琬", "文": "雯闻", "建": "健剑",
    "国": "帼", "志": "智", "永": "勇咏", "金": "今锦", "福": "富", "生": "声升", "荣": "蓉容",
    "贵": "桂", "桂": "贵", "玉": "钰毓", "淑": "舒", "春": "纯", "月": "悦", "美": "梅", "爱": "艾",
    "云": "芸韵", "晓": "小筱", "小": "晓", "东": "冬栋", "新": "欣鑫", "立": "力丽", "振": "震",
    "卫": "维", "天": "田", "家": "佳嘉", "嘉": "佳家", "豪": "浩", "远": "源渊", "翔": "祥",
    "鸣": "明铭", "阳": "洋扬", "沐": "木", "锦": "劲金", "承": "成诚", "景": "静境", "川": "传",
    "一": "依伊", "依": "一伊", "芷": "芝", "安": "岸", "可": "珂", "宸": "晨辰", "墨": "默",
    "皓": "浩昊", "奕": "亦艺", "德": "得", "宝": "保", "祥": "翔", "义": "毅", "忠": "中", "发": "法",
    "山": "珊", "财": "才", "才": "财", "富": "福", "花": "华", "娥": "峨", "素": "苏", "翠": "萃",
    "彩": "采", "长": "常", "庆": "青", "树": "述", "芬": "分", "帅": "率", "乐": "勒",
    "若": "偌", "诺": "喏", "根": "跟", "水": "睡", "有": "友", "和": "禾", "设": "社",
    "胜": "盛", "好": "郝",
}  # fmt: skip


def _homophone(rng: random.Random, surname: str, given: str) -> str | None:
    spots = [i for i, ch in enumerate(given) if _HOMOPHONES.get(ch)]
    if not spots:
        return None
    i = spots[int(rng.random() * len(spots))]
    options = _HOMOPHONES[given[i]]
    return surname + given[:i] + options[int(rng.random() * len(options))] + given[i + 1 :]


def _pinyin_name(surname: str, given: str) -> str:
    sur = "".join(_SURNAME_PINYIN.get(ch) or lazy_pinyin(ch)[0] for ch in surname)
    return f"{sur.capitalize()} {''.join(lazy_pinyin(given)).capitalize()}"


def _draw_name(rng: random.Random, surname: str, sex: str, year: int) -> str:
    return surname + _GIVEN[(_era(year), sex)].draw(rng)


# --------------------------------------------------------------------------------------------------
# Places: invented street, estate and village names

_STREETS = (  # name, kind, weight, community index
    ("云岭街道", "subdistrict", 1.6, 0), ("青溪街道", "subdistrict", 1.8, 0), ("文昌街道", "subdistrict", 1.4, 0),
    ("梅林街道", "subdistrict", 1.2, 0), ("桃源镇", "town", 1.0, 0), ("石桥镇", "town", 0.9, 0),
    ("白沙镇", "town", 1.1, 1), ("龙潭镇", "town", 1.0, 1), ("枫林镇", "town", 0.9, 1),
    ("双河镇", "town", 0.8, 1), ("清泉乡", "township", 0.5, 1), ("金竹乡", "township", 0.4, 1),
)  # fmt: skip
_ESTATE_STEMS = (
    "翠湖", "金桂", "锦绣", "阳光", "和谐", "紫荆", "枫丹", "望江", "滨河", "书香", "碧水", "丽景", "华庭", "春晖", "明珠", "东湖",
    "南苑", "西城", "北辰", "凤凰", "玉兰", "桂花", "香樟", "银杏", "清风", "朝阳", "新城", "世纪", "江南", "兰亭", "芙蓉", "青云",
    "梅园", "荷塘",
)  # fmt: skip
_ESTATE_SUFFIXES = ("小区", "花园", "家园", "苑", "新村", "公寓")
_VILLAGE_STEMS = (
    "柳塘", "石门", "上坂", "下畈", "杨家", "竹园", "桥头", "山背", "大坞", "高岭", "新塘", "东岙", "西坑", "南山", "北溪", "龙井",
    "凤岭", "茶园", "枫树", "樟树", "松林", "黄泥", "白石", "青石", "桃花", "杏坞", "梨园", "上庄", "下庄", "中村", "前山", "后岭",
    "大路", "小溪", "长塘", "方家", "周家", "叶家", "何家", "徐家", "洪家", "鲍家", "马岭", "牛山", "鹤溪", "鹿鸣", "银坑", "铜山",
    "雁塘", "燕窝", "鸭塘", "鹅湖", "莲塘", "菱湖", "芦湾", "荻浦", "麻车", "箬岭", "瓦窑", "石塔",
)  # fmt: skip
_ROADS = ("人民路", "文昌路", "青溪大道", "健康路", "新华路", "中兴路", "迎宾路", "学府路", "滨江路", "建设路")  # fmt: skip

_KIND_SUFFIX_EN = {"subdistrict": "Subdistrict", "town": "Town", "township": "Township"}


def _street_en(name: str, kind: str) -> str:
    return f"{_pinyin_title(name[:-2] if kind == 'subdistrict' else name[:-1])} {_KIND_SUFFIX_EN[kind]}"


# --------------------------------------------------------------------------------------------------
# Institutions

_DEPARTMENTS = {  # code, name, specialty
    "lead_hospital": (
        ("IM", "内科", "internal_medicine"), ("SUR", "外科", "surgery"), ("PED", "儿科", "paediatrics"),
        ("OBG", "妇产科", "obstetrics_gynaecology"), ("ED", "急诊科", "emergency"), ("RAD", "放射科", "radiology"),
        ("US", "超声科", "ultrasound"), ("LAB", "检验科", "laboratory"), ("GP", "全科", "general_practice"),
        ("TCM", "中医科", "traditional_chinese_medicine"), ("REH", "康复医学科", "rehabilitation"),
        ("PHA", "药剂科", "pharmacy"),
        # 基层科: the lead hospital's department that manages its branch centres and stations.
        ("PCD", "基层科", "primary_care_management"),
    ),
    "district_hospital": (
        ("IM", "内科", "internal_medicine"), ("SUR", "外科", "surgery"), ("PED", "儿科", "paediatrics"),
        ("OBG", "妇产科", "obstetrics_gynaecology"), ("ED", "急诊科", "emergency"), ("RAD", "放射科", "radiology"),
        ("US", "超声科", "ultrasound"), ("LAB", "检验科", "laboratory"), ("GP", "全科", "general_practice"),
        ("PHA", "药剂科", "pharmacy"),
    ),
    "branch_centre": (
        ("GP", "全科", "general_practice"), ("PREV", "预防保健科", "preventive_care"),
        ("PH", "公共卫生科", "public_health"), ("LAB", "检验科", "laboratory"), ("US", "超声室", "ultrasound"),
        ("TCM", "中医科", "traditional_chinese_medicine"), ("PHA", "药房", "pharmacy"),
    ),
    "station": (("GP", "全科", "general_practice"),),
    "public_health": (
        ("CD", "传染病防制科", "communicable_disease"), ("EPI", "免疫规划科", "immunization"),
        ("NCD", "慢性病防制科", "chronic_disease"), ("LAB", "检验科", "laboratory"),
    ),
    "bureau": (
        ("OFF", "办公室", "administration"), ("MED", "医政医管科", "medical_administration"),
        ("PRI", "基层卫生健康科", "primary_care_administration"),
    ),
}  # fmt: skip

_CLINICAL = {"IM", "SUR", "PED", "OBG", "ED", "GP", "TCM", "REH", "PREV", "PH", "CD", "EPI", "NCD"}
_TECHNICAL = {"RAD", "US", "LAB"}

_STAFF = {  # org type → (low, high) head count
    "lead_hospital": (36, 44), "district_hospital": (34, 42), "branch_centre": (10, 14), "station": (1, 3),
    "public_health": (8, 12), "bureau": (0, 0),
}  # fmt: skip
_QUALIFICATIONS = {
    "hospital": _Weighted([("physician", 45), ("nurse", 42), ("technician", 8), ("pharmacist", 5)]),
    "branch_centre": _Weighted([("physician", 45), ("nurse", 40), ("technician", 10), ("pharmacist", 5)]),
    "station": _Weighted([("physician", 80), ("nurse", 20)]),
    "public_health": _Weighted([("physician", 70), ("technician", 30)]),
}
_TITLES = {  # qualification → (title, weight, years in practice low, high)
    "physician": (("主任医师", 6, 20, 35), ("副主任医师", 14, 13, 25), ("主治医师", 35, 6, 15), ("医师", 45, 1, 6)),
    "nurse": (("主管护师", 35, 8, 22), ("护师", 40, 3, 10), ("护士", 25, 1, 4)),
    "technician": (("主管技师", 40, 8, 22), ("技师", 60, 1, 8)),
    "pharmacist": (("主管药师", 40, 8, 22), ("药师", 60, 1, 8)),
}  # fmt: skip
_TITLE_PICK = {q: _Weighted([(t, t[1]) for t in ts]) for q, ts in _TITLES.items()}

_LICENCE_CATEGORY = {  # 医疗机构类别 (simplified) for the synthetic 登记号
    "lead_hospital": "11A1001", "district_hospital": "11A1002", "station": "12B2001",
}  # fmt: skip


_DISTRICT_INSTITUTIONS = (  # code, name, English name, type, grade, street, community, parent
    ("BUR", "青溪区卫生健康局", "Qingxi District Health Commission", "bureau", None, "青溪街道", None, None),
    ("CDC", "青溪区疾病预防控制中心", "Qingxi District Center for Disease Control and Prevention",
     "public_health", None, "青溪街道", None, None),
    ("LH1", "青溪区人民医院", "Qingxi District People's Hospital", "lead_hospital", "3A", "青溪街道", "MC1", None),
    ("LH2", "青溪区中医院", "Qingxi District Hospital of Traditional Chinese Medicine", "lead_hospital", "2A",
     "白沙镇", "MC2", None),
    ("DH1", "青溪区第二人民医院", "Qingxi District Second People's Hospital", "district_hospital", "2A",
     "文昌街道", "MC1", None),
    ("DH2", "青溪区第三人民医院", "Qingxi District Third People's Hospital", "district_hospital", "2B",
     "桃源镇", "MC1", None),
    ("DH3", "青溪区中西医结合医院", "Qingxi District Hospital of Integrated Medicine", "district_hospital", "2A",
     "龙潭镇", "MC2", None),
    ("DH4", "青溪区康复医院", "Qingxi District Rehabilitation Hospital", "district_hospital", "2B",
     "枫林镇", "MC2", None),
)  # fmt: skip


def _org_code9(rng: random.Random) -> str:
    """The 9-character organisation part of a credit code (GB 32100 alphabet: no I, O, S, V, Z)."""
    return f"4{rng.randrange(10**7):07d}" + "0123456789ABCDEFGHJKLMNPQRTUWXY"[rng.randrange(31)]


def _build_structure(seed: int, residents: int) -> District:
    rng = random.Random(f"onetrip-demo:{seed}:structure")
    used_code9: set[str] = set()

    def uscc(prefix: str) -> tuple[str, str]:
        while (code9 := _org_code9(rng)) in used_code9:
            pass
        used_code9.add(code9)
        return make_uscc(f"{prefix}{HOME_AREA_CODE}{code9}"), code9

    def address(street: str) -> str:
        return f"{PROVINCE}{CITY}{DISTRICT_NAME}{street}{rng.choice(_ROADS)}{rng.randint(1, 399)}号"

    def org(code, name, name_en, org_type, grade, street, community, parent, category=None) -> Org:
        credit, code9 = uscc("11" if org_type == "bureau" else "12")
        category = category or _LICENCE_CATEGORY.get(org_type)
        licence = f"{code9}{HOME_AREA_CODE}{category}" if category else None
        served = street if org_type in ("branch_centre", "station") else None
        return Org(
            code, name, name_en, org_type, grade, credit, licence, address(street), _landline(rng), community,
            parent, served,
        )  # fmt: skip

    communities = (
        Community("MC1", "青溪区人民医院医共体", "Qingxi People's Hospital Medical Community", "LH1"),
        Community("MC2", "青溪区中医院医共体", "Qingxi TCM Hospital Medical Community", "LH2"),
    )
    orgs: list[Org] = [org(*row) for row in _DISTRICT_INSTITUTIONS]

    estate_stems = rng.sample(_ESTATE_STEMS, len(_ESTATE_STEMS))
    village_stems = rng.sample(_VILLAGE_STEMS, len(_VILLAGE_STEMS))
    streets: list[Street] = []
    stations: list[Org] = []
    for i, (sname, kind, weight, ci) in enumerate(_STREETS, start=1):
        community = communities[ci]
        centre_code = f"BC{i:02d}"
        sname_en = _street_en(sname, kind)
        if kind == "subdistrict":  # 社区卫生服务中心 in a 街道, 卫生院 in a 镇/乡
            cname, cname_en = f"{sname}社区卫生服务中心", f"{sname_en} Community Health Service Centre"
            grade, category = "1A", "12B1001"
        else:
            cname, cname_en = f"{sname}卫生院", f"{sname_en} Health Centre"
            grade, category = "1B", "12C1001"
        where = (sname, community.code, community.lead_code, category)
        orgs.append(org(centre_code, cname, cname_en, "branch_centre", grade, *where))
        n_stations = rng.randint(1, 3)
        hoods: list[Neighbourhood] = []
        n_hoods = {"subdistrict": 8, "town": 7, "township": 5}[kind]
        for k in range(n_hoods):
            station_code = f"ST{i:02d}-{k + 1}" if k < n_stations else None
            if kind == "subdistrict":
                stem = estate_stems.pop()
                hood = Neighbourhood(stem + rng.choice(_ESTATE_SUFFIXES), stem, "estate", station_code)
                st_name = f"{sname}{stem}社区卫生服务站"
                st_en = f"{sname_en} {_pinyin_title(stem)} Community Health Station"
                st_cat = "12B2001"
            else:
                stem = village_stems.pop()
                hood = Neighbourhood(stem + "村", stem, "village", station_code)
                st_name, st_en = f"{sname}{stem}村卫生室", f"{sname_en} {_pinyin_title(stem)} Village Clinic"
                st_cat = "12J1001"
            hoods.append(hood)
            if station_code:
                where = (sname, community.code, centre_code, st_cat)
                stations.append(org(station_code, st_name, st_en, "station", None, *where))
        streets.append(Street(sname, sname_en, kind, weight, community.code, centre_code, tuple(hoods)))
    orgs.extend(stations)

    departments: list[Department] = []
    practitioners: list[Practitioner] = []
    for o in orgs:
        depts = [Department(o.code, c, n, s) for c, n, s in _DEPARTMENTS[o.org_type]]
        departments.extend(depts)
        practitioners.extend(_staff(rng, o, depts))

    mrn_starts = {o.code: rng.randrange(1, 90) * 10**6 for o in orgs}
    return District(
        seed=seed,
        residents=residents,
        area_code=HOME_AREA_CODE,
        province=PROVINCE,
        city=CITY,
        name=DISTRICT_NAME,
        name_en=DISTRICT_NAME_EN,
        streets=tuple(streets),
        communities=communities,
        organizations=tuple(orgs),
        departments=tuple(departments),
        practitioners=tuple(practitioners),
        mrn_starts=mrn_starts,
    )


def _staff(rng: random.Random, o: Org, depts: list[Department]) -> list[Practitioner]:
    low, high = _STAFF[o.org_type]
    count = rng.randint(low, high)
    kind = "hospital" if o.org_type in ("lead_hospital", "district_hospital") else o.org_type
    clinical = [d.code for d in depts if d.code in _CLINICAL] or [depts[0].code]
    technical = [d.code for d in depts if d.code in _TECHNICAL] or clinical
    pharmacy = [d.code for d in depts if d.code == "PHA"] or [None]
    out = []
    for n in range(1, count + 1):
        qual = _QUALIFICATIONS[kind].pick(rng)
        title, _w, years_low, years_high = _TITLE_PICK[qual].pick(rng)
        years = rng.randint(years_low, years_high)
        birth_year = AS_OF.year - years - rng.randint(22, 26)
        p_male = {"physician": 0.55, "nurse": 0.03}.get(qual, 0.4)
        sex = SEX_MALE if rng.random() < p_male else SEX_FEMALE
        dept = rng.choice({"technician": technical, "pharmacist": pharmacy}.get(qual, clinical))
        licence = None
        if qual in ("physician", "nurse"):
            kind_digit = 1 if qual == "physician" else 2
            licence = f"{kind_digit}{rng.randrange(100):02d}{HOME_AREA_CODE}{rng.randrange(10**6):06d}"
        out.append(Practitioner(
            org_code=o.code, department_code=dept, staff_no=f"{n:04d}",
            name=_draw_name(rng, _SURNAMES.pick(rng), sex, birth_year), sex=sex, title=title,
            qualification=qual, licence_no=licence, practice_since=dt.date(AS_OF.year - years, 7, 1),
            phone=_mobile(rng),
        ))  # fmt: skip
    return out


def generate_district(seed: int = 42, residents: int = 20_000) -> District:
    """The district's institutions and staff; iterate ``District.iter_residents()`` for the people."""
    if residents < 0:
        raise ValueError("residents must be >= 0")
    return _build_structure(seed, residents)


# --------------------------------------------------------------------------------------------------
# Households and residents

# Age pyramid (per cent by 5-year band, the 2020 census shape), ages 0–95.
_PYRAMID = (5.4, 6.3, 6.2, 5.2, 5.3, 6.1, 8.6, 7.0, 6.6, 8.0, 8.6, 7.2, 5.2, 5.0, 3.5, 2.3, 1.5, 0.8, 0.3)
# A household is built around an "anchor" drawn from the pyramid; anchors are down-weighted by the mean
# size of the household they bring, so the people that come out follow the pyramid roughly.
_ANCHOR_SIZE = (2.6, 2.6, 2.6, 2.4, 1.9, 1.9, 2.6, 2.9, 2.9, 3.0, 2.7, 2.3, 1.9, 1.7, 1.7, 1.6, 1.6, 1.5, 1.4)
_ANCHOR_BANDS = _Weighted([(b, w / s) for b, (w, s) in enumerate(zip(_PYRAMID, _ANCHOR_SIZE, strict=True))])

_AS_OF_ORD = AS_OF.toordinal()
_Y2000_ORD = dt.date(2000, 1, 1).toordinal()


def _anchor_age(rng: random.Random) -> int:
    band = _ANCHOR_BANDS.pick(rng)
    return min(95, band * 5 + int(rng.random() * (6 if band == 18 else 5)))


def _household_members(rng: random.Random) -> list[tuple[str, int, bool]]:
    """(sex, age, takes the family surname) for each member; the first member is the head."""
    a = _anchor_age(rng)
    r = rng.random()
    members: list[tuple[str, int, bool]] = []

    def couple(age_m: int, age_f: int) -> None:
        members.append((SEX_MALE, min(95, max(18, age_m)), True))
        members.append((SEX_FEMALE, min(95, max(18, age_f)), False))

    def child(age: int) -> None:
        if age >= 0:
            members.append((SEX_MALE if rng.random() < 0.52 else SEX_FEMALE, age, rng.random() < 0.9))

    if a < 18:
        father = a + rng.randint(23, 36)
        couple(father, father - rng.randint(-3, 6))
        child(a)
        if rng.random() < 0.35:
            child(max(0, min(a + rng.randint(-8, 8), members[1][1] - 19)))
        if rng.random() < 0.2 and father + 24 <= 95:
            grandparent_sex = SEX_MALE if rng.random() < 0.4 else SEX_FEMALE
            members.append((grandparent_sex, min(95, father + rng.randint(24, 34)), True))
    elif a < 30:
        if r < 0.40:
            members.append((SEX_MALE if rng.random() < 0.5 else SEX_FEMALE, a, True))
        else:
            couple(a + rng.randint(0, 3), a - rng.randint(0, 3))
            if r >= 0.65 and a >= 22:
                child(rng.randint(0, a - 22))
    elif a < 60:
        if r < 0.08:
            members.append((SEX_MALE if rng.random() < 0.5 else SEX_FEMALE, a, True))
        else:
            couple(a + rng.randint(-1, 3), a - rng.randint(-1, 4))
            if r >= 0.25:
                child(a - rng.randint(22, 36))
                if rng.random() < 0.4:
                    child(a - rng.randint(22, 36))
            if r >= 0.85 and a + 24 <= 95:
                elder_sex = SEX_FEMALE if rng.random() < 0.6 else SEX_MALE
                members.append((elder_sex, min(95, a + rng.randint(24, 34)), True))
    else:
        if r < 0.35:
            members.append((SEX_MALE if rng.random() < 0.42 else SEX_FEMALE, a, True))
        else:
            couple(a + rng.randint(-2, 3), a - rng.randint(-2, 4))
            if r >= 0.93:
                child(a - rng.randint(24, 34))
    return members


def _birth_date(rng: random.Random, age: int) -> dt.date:
    return dt.date.fromordinal(_AS_OF_ORD - age * 365 - age // 4 - int(rng.random() * 365))


def _id_15(number18: str) -> str:
    """The first-generation form: area + 2-digit year + month + day + sequence, no check character."""
    return number18[:6] + number18[8:17]


def _abbreviate(line: str, hood: Neighbourhood, parts: tuple[int, int, int]) -> str:
    if hood.kind == "estate":
        building, unit, room = parts
        return f"{hood.stem}{building}-{unit}-{room}"
    return f"{hood.stem}{parts[0]}组"


def _transpose(rng: random.Random, phone: str) -> str | None:
    digits = phone[3:]  # after +86; keep the 3-digit prefix so the number stays valid
    spots = [i for i in range(3, len(digits) - 1) if digits[i] != digits[i + 1]]
    if not spots:
        return None
    i = spots[int(rng.random() * len(spots))]
    return "+86" + digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]


def _miskey_birth(birth: dt.date) -> dt.date:
    if birth.day <= 12 and birth.day != birth.month:
        swapped = dt.date(birth.year, birth.day, birth.month)
        if swapped <= AS_OF:
            return swapped
    y = birth.year
    flipped = y - y % 100 + (y % 10) * 10 + (y // 10) % 10
    if flipped != y and flipped <= AS_OF.year:
        try:
            return birth.replace(year=flipped)
        except ValueError:  # 29 February
            return birth.replace(year=flipped, day=28)
    return birth - dt.timedelta(days=1)


def _iter_residents(d: District) -> Iterator[Resident]:
    rng = random.Random(f"onetrip-demo:{d.seed}:residents")
    streets = _Weighted([(s, s.weight) for s in d.streets])
    by_community: dict[str, list[str]] = {}
    for o in d.organizations:
        if o.org_type in ("lead_hospital", "district_hospital"):
            by_community.setdefault(o.community_code, []).append(o.code)
    hospitals_for = {}
    for c in d.communities:
        own = by_community[c.code]
        others = [code for cc, codes in by_community.items() if cc != c.code for code in codes]
        pairs = [(c.lead_code, 0.55)]
        pairs += [(h, 0.25 / (len(own) - 1)) for h in own if h != c.lead_code]
        pairs += [(h, (0.12 if h.startswith("LH") else 0.08 / (len(others) - 1))) for h in others]
        hospitals_for[c.code] = _Weighted(pairs)
    name_errors = RATES["name_traditional"] + RATES["name_homophone"]
    mrn_next = dict(d.mrn_starts)
    id_seq: dict[tuple[str, int, bool], int] = {}

    def mrn(org_code: str) -> str:
        n = mrn_next[org_code] = mrn_next[org_code] + 1 + (rng.random() < 0.1)  # a few numbers voided
        return f"{n:09d}"

    index = 0
    household = 0
    while index < d.residents:
        household += 1
        street: Street = streets.pick(rng)
        hood = street.neighbourhoods[int(rng.random() * len(street.neighbourhoods))]
        if hood.kind == "estate":
            parts = (rng.randint(1, 30), rng.randint(1, 4), rng.randint(1, 28) * 100 + rng.randint(1, 4))
            line = f"{hood.name}{parts[0]}幢{parts[1]}单元{parts[2]}室"
        else:
            parts = (rng.randint(1, 12), rng.randint(1, 180), 0)
            line = f"{hood.name}{parts[0]}组{parts[1]}号"
        short_line = _abbreviate(line, hood, parts)
        area = (
            MIGRANT_AREA_CODES[int(rng.random() * len(MIGRANT_AREA_CODES))]
            if rng.random() < MIGRANT_HOUSEHOLD_SHARE
            else HOME_AREA_CODE
        )
        family_surname = _SURNAMES.pick(rng)

        people = []  # (name, surname, given, sex, birth, id, phone)
        for sex, age, family in _household_members(rng):
            surname = family_surname if family else _SURNAMES.pick(rng)
            birth = _birth_date(rng, age)
            given = _GIVEN[(_era(birth.year), sex)].draw(rng)
            key = (area, birth.toordinal(), sex == SEX_MALE)
            n = id_seq.get(key, 0)
            id_seq[key] = n + 1
            offset = 2 * ((key[1] * 7919 + int(area)) % 500) + (1 if sex == SEX_MALE else 0)
            id_number = make_resident_id(area, birth, (offset + 2 * n) % 1000)
            phone = None
            if age >= 14 and rng.random() < (0.87 if age < 75 else 0.55):
                phone = _mobile(rng)
            people.append([surname + given, surname, given, sex, birth, id_number, phone, age])
        adult_phones = [p[6] for p in people if p[7] >= 18 and p[6]]
        for p in people:  # children (and some elderly) are reached on a family member's phone
            if p[6] is None and adult_phones and (p[7] < 14 or rng.random() < 0.3):
                p[6] = adult_phones[0]
        household_phones = {p[6] for p in people if p[6]}

        for name, surname, given, sex, birth, id_number, phone, age in people:
            if index >= d.residents:
                break
            org_codes = []
            if rng.random() < P_HOME_CENTRE:
                org_codes.append(street.centre_code)
            if hood.station_code and rng.random() < P_STATION:
                org_codes.append(hood.station_code)
            p_hosp = P_HOSPITAL + (0.2 if age >= 60 else 0.1 if age < 6 else 0.0)
            if rng.random() < p_hosp:
                pick = hospitals_for[street.community_code]
                first = pick.pick(rng)
                org_codes.append(first)
                if rng.random() < P_SECOND_HOSPITAL and (second := pick.pick(rng)) != first:
                    org_codes.append(second)
            records = []
            for org_code in org_codes:
                errors = []
                # ID number
                rec_id: str | None = id_number
                rec_birth = birth
                if rng.random() < RATES["id_missing"]:
                    rec_id = None
                    errors.append("id_missing")
                    if rng.random() < RATES["birth_date_miskeyed"]:
                        rec_birth = _miskey_birth(birth)
                        errors.append("birth_date_miskeyed")
                elif birth.toordinal() < _Y2000_ORD and rng.random() < RATES["id_15"]:
                    rec_id = _id_15(id_number)
                    errors.append("id_15")
                # Name
                rec_name = name
                r = rng.random()  # one draw decides which name error, if any
                if r < RATES["name_traditional"]:
                    trad = _traditional(name)
                    if trad != name:
                        rec_name = trad
                        errors.append("name_traditional")
                elif r < RATES["name_traditional"] + RATES["name_homophone"]:
                    typo = _homophone(rng, surname, given)
                    if typo:
                        rec_name = typo
                        errors.append("name_homophone")
                elif org_code.startswith("ST") and r < name_errors + RATES["name_pinyin"]:
                    rec_name = _pinyin_name(surname, given)
                    errors.append("name_pinyin")
                # Phone
                rec_phone = phone
                r = rng.random()
                if r < RATES["phone_transposed"] + RATES["phone_family"]:
                    others = sorted(household_phones - {phone}) if r >= RATES["phone_transposed"] else []
                    if others:
                        rec_phone = others[int(rng.random() * len(others))]
                        errors.append("phone_family")
                    elif phone and (swapped := _transpose(rng, phone)):
                        rec_phone = swapped
                        errors.append("phone_transposed")
                # Address
                province, city, district = PROVINCE, CITY, DISTRICT_NAME
                rec_street, rec_line = street.name, line
                if rng.random() < RATES["address_variant"]:
                    kind = rng.random()
                    if kind < 0.4:
                        rec_street = None
                    elif kind < 0.75:
                        province = city = None
                        rec_line = short_line
                    else:
                        province = city = district = None
                    errors.append("address_variant")
                records.append(Record(
                    index, org_code, mrn(org_code), rec_id, rec_name, sex, rec_birth, rec_phone,
                    province, city, district, rec_street, rec_line, tuple(errors) if errors else (),
                ))  # fmt: skip
            yield Resident(
                index=index, household=household, name=name, surname=surname, sex=sex, birth_date=birth,
                id_number=id_number, phone=phone, province=PROVINCE, city=CITY, district=DISTRICT_NAME,
                street=street.name, address_line=line, home_centre=street.centre_code,
                migrant=area != HOME_AREA_CODE, records=tuple(records),
            )  # fmt: skip
            index += 1
