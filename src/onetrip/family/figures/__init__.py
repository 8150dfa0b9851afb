"""Family-doctor figures (R3.6 管理率/规范管理率/控制率, R5.3 签约率): ``formulas`` (pure), ``repository``
(the counts), ``service`` (per institution, team or doctor, for a year)."""
