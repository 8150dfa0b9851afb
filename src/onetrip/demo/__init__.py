"""The synthetic demo district: a fictional district (青溪区) with two medical communities, its
institutions, staff and residents, and each institution's own — imperfect — registration of them.

``synth`` generates plain data (no database); ``loader`` writes it through SQLAlchemy Core.
"""
