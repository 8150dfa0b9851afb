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
    # Not in the national childhood programme: given in programmes (the free influenza campaign, issue 20 point 6).
    "IIV": ("流感灭活疫苗", "influenza vaccine, inactivated"),
}

# CVX (CDC vaccine administered codes, HL7 table 0292) accepted in HL7 v2 RXA-5 for the vaccines that have one
# (issue 20 point 7). Only codes naming exactly one of our vaccines are mapped: there is no CVX for MPSV-A,
# MPSV-AC, JE-L or HepA-L, and "unspecified formulation" codes (HepA 85, JE 129, polio 89) could be either
# product of an alternative pair, so a message carrying them is refused (AE naming RXA-5) rather than guessed.
CVX_TO_NIP: dict[str, str] = {
    "08": "HepB",    # Hep B, adolescent or pediatric
    "45": "HepB",    # Hep B, unspecified formulation (one HepB series in the programme)
    "19": "BCG",
    "10": "IPV",
    "178": "bOPV",   # non-US bivalent oral polio vaccine (types 1 and 3)
    "20": "DTaP",
    "106": "DTaP",   # DTaP, 5 pertussis antigens
    "107": "DTaP",   # DTaP, unspecified formulation
    "28": "DT",      # DT (pediatric)
    "03": "MMR",
    "134": "JE-I",   # Japanese encephalitis IM (Vero cell, inactivated)
    "39": "JE-I",    # Japanese encephalitis SC (inactivated)
    "83": "HepA-I",  # Hep A, pediatric/adolescent, 2 dose (inactivated)
    "118": "HPV2",   # HPV, bivalent
}
