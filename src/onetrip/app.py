"""create_app(): the one FastAPI application — REST API, FHIR R4 facade, and the web UI."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from onetrip import __version__
from onetrip.api import errors
from onetrip.api.endpoints import router as api_router
from onetrip.auth.endpoints import router as auth_router
from onetrip.config import Settings, get_settings
from onetrip.db.session import make_engine
from onetrip.interop.fhir.router import router as fhir_router

STATIC = Path(__file__).parent / "web" / "static"


def create_app(settings: Settings | None = None, factory: sessionmaker[Session] | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = None
    if factory is None:
        engine = make_engine(settings.database_url, echo=settings.log_sql)
        factory = sessionmaker(bind=engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="OneTrip 医共体平台", version=__version__, lifespan=lifespan,
        description="数据多跑路，群众少跑腿 — the county medical-community platform. "
                    "FHIR R4 at /fhir/R4, OAuth2 at /auth/token, web UI at /ui.",
    )
    app.state.sessionmaker = factory
    app.state.settings = settings
    errors.install(app)
    app.include_router(auth_router)
    app.include_router(api_router)
    app.include_router(fhir_router)
    try:
        from onetrip.web.routes import router as web_router

        app.include_router(web_router)
    except ImportError as e:  # pragma: no cover - only while the web package is being built
        logging.getLogger("onetrip").warning("web UI not loaded: %s", e)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    return app
