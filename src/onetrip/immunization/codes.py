"""The CodeSystem nip-vaccine (docs/immunization.md): the vaccine codes of the forecaster, the stock and the
records."""

from __future__ import annotations

# The CodeSystem nip-vaccine: the RULES §6 abbreviations (docs/immunization.md holds the definition).
VACCINES: dict[str, tuple[str, str]] = {
    "HepB": ("乙肝疫苗", "hepatitis B vaccine"),
    "BCG": ("卡介苗", "BCG vaccine"),
    "IPV": ("脊灰灭活疫苗", "inactivated poliovirus vaccine"),
    "bOPV": ("二价脊灰减毒活疫苗", "bivalent oral poliovirus vaccine (types 1 and 3)"),
    "DTaP": ("百白破疫苗", "diphtheria, tetanus and acellular pertussis vaccine"),
    "DT": ("白破疫苗", "diphtheria and tetanus vaccine"),
    "MPSV-A": ("A群流脑多糖疫苗", "meningococcal polysaccharide vaccine group A"),
    "MPSV-AC": ("A群C群流脑多糖疫苗", "meningococcal polysaccharide vaccine groups A and C"),
    "MMR": ("麻腮风疫苗", "measles, mumps and rubella vaccine"),
    "JE-L": ("乙脑减毒活疫苗", "Japanese encephalitis vaccine, live attenuated"),
    "JE-I": ("乙脑灭活疫苗", "Japanese encephalitis vaccine, inactivated"),
    "HepA-L": ("甲肝减毒活疫苗", "hepatitis A vaccine, live attenuated"),
    "HepA-I": ("甲肝灭活疫苗", "hepatitis A vaccine, inactivated"),
    "HPV2": ("双价人乳头瘤病毒疫苗", "bivalent human papillomavirus vaccine"),
}
