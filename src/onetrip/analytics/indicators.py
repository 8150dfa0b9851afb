"""The indicator registry: every indicator defined once (id, names, numerator, denominator, unit, rule,
dimensions, target). Code-defined; the operator-editable part — targets and the parameters of the
definitions — lives in the ``analytics`` rule table (db/seeds/rules_analytics.json).

Kinds:
* ``count``  — a sum of daily facts (``numerator`` measures);
* ``ratio``  — Σ numerator measures ÷ Σ denominator measures over the period;
* ``median`` — the median of a histogram measure (bucket = days);
* ``stock``  — a state at the end of the period, from the family-doctor projections and catchments.

Confidence follows RULES.md: V official, S secondary, U chosen here because RULES gives no formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PERIOD, COMMUNITY, ORGANIZATION, DEPARTMENT = "period", "community", "organization", "department"
ALL_DIMS = (PERIOD, COMMUNITY, ORGANIZATION, DEPARTMENT)
NO_DEPT = (PERIOD, COMMUNITY, ORGANIZATION)


@dataclass(frozen=True)
class Indicator:
    id: str
    name_zh: str
    name_en: str
    kind: str  # count | ratio | median | stock
    unit: str  # count | ratio | days
    numerator_zh: str
    numerator_en: str
    denominator_zh: str | None
    denominator_en: str | None
    rule: str
    confidence: str
    dimensions: tuple[str, ...]
    numerator: tuple[str, ...] = ()  # fact measures
    denominator: tuple[str, ...] = ()
    programme: str | None = None  # stock indicators of chronic programmes
    higher_is_better: bool = True
    tile: bool = True  # shown as a KPI tile on the cockpit
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def target_key(self) -> str:
        return f"target.{self.id}"

    def as_dict(self, target: float | None = None) -> dict:
        return {"id": self.id, "name_zh": self.name_zh, "name_en": self.name_en, "kind": self.kind,
                "unit": self.unit, "numerator": {"zh": self.numerator_zh, "en": self.numerator_en,
                                                 "measures": list(self.numerator)},
                "denominator": {"zh": self.denominator_zh, "en": self.denominator_en,
                                "measures": list(self.denominator)} if self.denominator_zh else None,
                "rule": self.rule, "basis": dict(zip(("zh", "en"), basis(self), strict=True)),
                "confidence": self.confidence, "dimensions": list(self.dimensions),
                "target": target, "higher_is_better": self.higher_is_better, "note": self.note}


def _stock(pid: str, zh: str, en: str, num_zh: str, num_en: str, den_zh: str, den_en: str, rule: str,
           programme: str | None, conf: str = "S", note: str = "") -> Indicator:
    return Indicator(pid, zh, en, "stock", "ratio", num_zh, num_en, den_zh, den_en, rule, conf, NO_DEPT,
                     programme=programme, note=note)


INDICATORS: tuple[Indicator, ...] = (
    Indicator("lookups", "调阅次数", "Result look-ups", "count", "count",
              "成功调阅共享检查检验结果的审计记录数", "successful audited reads of shared results", None, None,
              "RULES §1, §10 (audit rows of result reads)", "U", NO_DEPT, numerator=("lookups",),
              note="counted by the reading institution; what counts as a look-up: rule analytics.lookup_what_prefixes"),
    Indicator("recognition_rate", "互认率", "Mutual recognition rate", "ratio", "ratio",
              "有可互认结果时选择互认的决定数", "decisions that recognised an existing result",
              "有可互认结果时的决定数（互认 + 不互认；理由98/99除外）",
              "decisions where a recognisable result existed (recognised + not; reasons 98/99 excluded)",
              "RULES R1.7 (first definition), R1.3", "U", NO_DEPT,
              numerator=("recog_recognised",), denominator=("recog_recognised", "recog_not_recognised")),
    Indicator("reminder_acceptance", "互认提醒采纳率", "Recognition reminder acceptance", "ratio", "ratio",
              "采纳提醒（互认）的核查数", "checks whose reminder was accepted (recognised)",
              "显示了可互认结果提醒的核查数", "checks that showed a recognisable-result reminder",
              "RULES R1.7 (second definition, reported separately)", "U", NO_DEPT, tile=False,
              numerator=("recog_accepted",), denominator=("recog_reminders",)),
    Indicator("referrals_up", "上转人次", "Upward referrals", "count", "count",
              "提交的上转申请数", "upward referrals submitted", None, None,
              "RULES §2, §8 (referral counts with year-on-year growth)", "S", ALL_DIMS, numerator=("referral_up",),
              note="department = the receiving department when given"),
    Indicator("referrals_down", "下转人次", "Downward referrals", "count", "count",
              "提交的下转申请数", "downward referrals submitted", None, None,
              "RULES §2, §8", "S", ALL_DIMS, numerator=("referral_down",)),
    Indicator("referrals_total", "双向转诊人次", "Two-way referrals", "count", "count",
              "提交的上转与下转申请数", "referrals submitted, up and down", None, None,
              "RULES §8 (seed: 3.6万人次, 同比 +27.93%)", "S", ALL_DIMS, numerator=("referral_up", "referral_down"),
              tile=False),
    Indicator("primary_visit_rate", "基层就诊率", "Primary-care visit share", "ratio", "ratio",
              "县域内基层医疗卫生机构门急诊人次", "outpatient and emergency visits at primary institutions in the county",
              "县域内门急诊总人次", "all outpatient and emergency visits in the county",
              "RULES §8 基层就诊率", "V", (PERIOD, COMMUNITY), numerator=("enc_amb_primary",),
              denominator=("enc_amb_in_county",), note="a share of the county's visits: by community, not by institution"),
    Indicator("outpatient_visits", "门急诊人次", "Outpatient and emergency visits", "count", "count",
              "县域内门急诊人次", "outpatient and emergency visits in the county", None, None,
              "RULES §8 (the denominator of 基层就诊率)", "V", ALL_DIMS, numerator=("enc_amb_in_county",)),
    Indicator("county_visit_rate", "县域就诊率（区域就诊率）", "In-county visit share", "ratio", "ratio",
              "居民县域内门急诊人次", "residents' outpatient and emergency visits inside the county",
              "居民门急诊总人次（含县域外）", "all residents' outpatient and emergency visits (inside and outside)",
              "RULES §8 (seed: 区域就诊率 94.2%); exact formula not given", "U", (PERIOD, COMMUNITY),
              numerator=("enc_amb_in_county",), denominator=("enc_amb",)),
    Indicator("county_inpatient_rate", "县域内住院率", "In-county inpatient share", "ratio", "ratio",
              "县域内住院人次", "inpatient stays inside the county", "住院总人次", "all inpatient stays",
              "RULES §8 县域内住院率 (insurance filter not applied: the platform has no payer on visits)", "U",
              (PERIOD, COMMUNITY), numerator=("enc_imp_in_county",), denominator=("enc_imp",), tile=False),
    _stock("contract_rate", "签约率", "Family-doctor contract rate", "期末有效签约居民数", "residents with a contract in force at period end",
           "服务人口", "catchment residents", "RULES R5.3", None, "U"),
    _stock("hypertension_management_rate", "高血压管理率", "Hypertension management rate", "期末在管高血压患者数",
           "managed hypertension patients at period end", "估算高血压患者数", "estimated hypertension patients",
           "RULES R3.6 管理率", "hypertension"),
    _stock("hypertension_standard_rate", "高血压规范管理率", "Hypertension managed to standard",
           "年内随访≥4次的在管患者数", "managed patients with ≥4 follow-ups in the year", "在管患者数", "managed patients",
           "RULES R3.6 规范管理率, R3.2", "hypertension"),
    _stock("hypertension_control_rate", "高血压控制率", "Hypertension control rate", "最近一次随访达标的在管患者数",
           "managed patients at target at their latest follow-up in the year", "在管患者数", "managed patients",
           "RULES R3.6 控制率, R3.5 (no follow-up in the year = not at target)", "hypertension"),
    _stock("diabetes_management_rate", "糖尿病管理率", "Diabetes management rate", "期末在管糖尿病患者数",
           "managed diabetes patients at period end", "估算糖尿病患者数", "estimated diabetes patients",
           "RULES R3.6 管理率", "diabetes"),
    _stock("diabetes_standard_rate", "糖尿病规范管理率", "Diabetes managed to standard",
           "年内随访≥4次的在管患者数", "managed patients with ≥4 follow-ups in the year", "在管患者数", "managed patients",
           "RULES R3.6 规范管理率, R3.2", "diabetes"),
    _stock("diabetes_control_rate", "糖尿病控制率", "Diabetes control rate", "最近一次随访达标的在管患者数",
           "managed patients at target at their latest follow-up in the year", "在管患者数", "managed patients",
           "RULES R3.6 控制率, R3.5", "diabetes"),
    Indicator("smart_booking_rate", "智慧预约率", "Smart booking rate", "ratio", "ratio",
              "分时段精准预约数", "appointments booked to a precise time slot", "未取消的预约数",
              "appointments not cancelled", "scheduling F1 (seed: 智慧预约率 90%以上)", "S", ALL_DIMS,
              numerator=("appt_precise",), denominator=("appt_live",)),
    Indicator("no_show_rate", "爽约率", "No-show rate", "ratio", "ratio", "爽约数", "no-shows",
              "爽约 + 已签到 + 已完成", "no-shows + checked in + fulfilled", "scheduling F3", "U", ALL_DIMS,
              numerator=("appt_noshow",), denominator=("appt_done",), higher_is_better=False),
    Indicator("exam_wait_median", "检查等待天数（中位数）", "Median exam wait", "median", "days",
              "检查日期 − 预约日期（天）的中位数", "median of exam date − booking date (days)", None, None,
              "scheduling F2", "U", ALL_DIMS, numerator=("exam_wait",), higher_is_better=False,
              note="by the exam's day; cancelled appointments excluded"),
)

BY_ID = {i.id: i for i in INDICATORS}

# The official document each indicator is published under (what a form or page cites; ``rule`` stays the
# internal reference to RULES.md for developers and the API). (Chinese, English).
MONITORING_2024 = ("紧密型县域医共体监测指标（2024）", "Monitoring indicators of close-knit county medical communities (2024)")
RECOGNITION_2022 = ("医疗机构检查检验结果互认管理办法（2022）",
                    "Measures for mutual recognition of examination and test results between institutions (2022)")
PHS_HYPERTENSION = ("国家基本公共卫生服务规范（第三版）高血压患者健康管理服务规范",
                    "National basic public health service standards (3rd ed.), hypertension management")
PHS_DIABETES = ("国家基本公共卫生服务规范（第三版）2型糖尿病患者健康管理服务规范",
                "National basic public health service standards (3rd ed.), type 2 diabetes management")
FAMILY_2022 = ("关于推进家庭医生签约服务高质量发展的指导意见（2022）",
               "Guidance on high-quality family-doctor contract services (2022)")
PLATFORM = ("本平台口径（无官方公式）", "platform definition (no official formula)")
SOURCES = {
    "lookups": PLATFORM, "recognition_rate": RECOGNITION_2022, "reminder_acceptance": RECOGNITION_2022,
    "referrals_up": MONITORING_2024, "referrals_down": MONITORING_2024, "referrals_total": MONITORING_2024,
    "primary_visit_rate": MONITORING_2024, "outpatient_visits": MONITORING_2024,
    "county_visit_rate": MONITORING_2024, "county_inpatient_rate": MONITORING_2024, "contract_rate": FAMILY_2022,
    "hypertension_management_rate": PHS_HYPERTENSION, "hypertension_standard_rate": PHS_HYPERTENSION,
    "hypertension_control_rate": PHS_HYPERTENSION, "diabetes_management_rate": PHS_DIABETES,
    "diabetes_standard_rate": PHS_DIABETES, "diabetes_control_rate": PHS_DIABETES,
    "smart_booking_rate": PLATFORM, "no_show_rate": PLATFORM, "exam_wait_median": PLATFORM,
}


def basis(ind: Indicator) -> tuple[str, str]:
    """The basis a person reads: the official document and the indicator's name in it, e.g.
    「紧密型县域医共体监测指标（2024）：基层就诊率」."""
    zh, en = SOURCES.get(ind.id, PLATFORM)
    return f"{zh}：{ind.name_zh}", f"{en}: {ind.name_en}"

# Which measure families feed which measures (facts.py computes them).
MEASURES = {
    "encounter": ("enc_amb", "enc_amb_in_county", "enc_amb_primary", "enc_imp", "enc_imp_in_county"),
    "appointment": ("appt_live", "appt_precise", "appt_done", "appt_noshow", "exam_wait"),
    "recognition": ("recog_recognised", "recog_not_recognised", "recog_reminders", "recog_accepted"),
    "lookup": ("lookups",),
    "referral": ("referral_up", "referral_down"),
}


def get(indicator_id: str) -> Indicator | None:
    return BY_ID.get(indicator_id)
