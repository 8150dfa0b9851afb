"""The FHIR R4 façade: one router for /fhir/R4 built from the resource types every domain declares.

``registry`` collects the declarations (``kit.fhir.ResourceType``, ``Variant``); ``router`` generates the
routes, pages searches and serves vread/_history; ``bundle`` runs transaction/batch Bundles; ``capability``
writes the CapabilityStatement from the registry, so it lists exactly what is served.
"""
