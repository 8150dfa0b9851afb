"""create_app(): the one FastAPI application — REST API, FHIR R4 facade, and the web UI."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from onetrip import __version__
from onetrip.analytics.endpoints import router as analytics_api_router
from onetrip.analytics.web import router as analytics_web_router
from onetrip.api import errors
from onetrip.api import openapi as openapi_doc
from onetrip.api.auth import router as auth_router
from onetrip.api.deps import CurrentPrincipal
from onetrip.api.endpoints import router as api_router
from onetrip.api.limits import RequestLimits
from onetrip.config import Environment, Settings, get_settings
from onetrip.db.session import make_engine
from onetrip.family.endpoints import devices_router as family_devices_router
from onetrip.family.endpoints import router as family_api_router
from onetrip.family.web import router as family_web_router
from onetrip.immunization.endpoints import router as immunization_api_router
from onetrip.immunization.web import router as immunization_web_router
from onetrip.interop.fhir.router import router as fhir_router
from onetrip.kit.errors import Forbidden
from onetrip.kit.principal import Principal
from onetrip.maternal_child.endpoints import router as maternal_child_api_router
from onetrip.maternal_child.web import router as maternal_child_web_router
from onetrip.notify.endpoints import router as notify_api_router
from onetrip.notify.web import router as notify_web_router
from onetrip.recognition.cds_hooks import router as recognition_cds_router
from onetrip.recognition.endpoints import router as recognition_api_router
from onetrip.recognition.web import router as recognition_web_router
from onetrip.records.endpoints import router as records_api_router
from onetrip.referral.endpoints import router as referral_api_router
from onetrip.referral.web import router as referral_web_router
from onetrip.scheduling.endpoints import router as scheduling_api_router
from onetrip.scheduling.web import router as scheduling_web_router
from onetrip.web.mpi import router as web_mpi_router
from onetrip.web.records import router as web_records_router
from onetrip.web.routes import router as web_router

STATIC = Path(__file__).parent / "web" / "static"
# Swagger UI and ReDoc, shipped by the fastapi-offline package and served from here: no CDN (issue 25, docs/web.md).
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS_URL = "/docs-assets"
# The docs pages may load nothing from another host (ReDoc's menu would fetch its maker's logo from a CDN).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "worker-src 'self' blob:; connect-src 'self'")
THREAD_POOL = 200


def create_app(settings: Settings | None = None, factory: sessionmaker[Session] | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = None
    if factory is None:
        engine = make_engine(settings.database_url, echo=settings.log_sql, pool_size=settings.db_pool_size,
                             pool_timeout=settings.db_pool_timeout)
        factory = sessionmaker(bind=engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Sync endpoints run in AnyIO's thread pool (40 threads by default). Requests queued on a
        # database lock can hold every thread while the one holding the lock waits for a thread to
        # commit; a wider pool keeps 50+ concurrent bookers from stalling (see tests/scheduling).
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREAD_POOL
        yield
        if engine is not None:
            engine.dispose()

    production = settings.env == Environment.production
    app = FastAPI(
        title="OneTrip 医共体平台", version=__version__, lifespan=lifespan,
        description="数据多跑路，群众少跑腿 — the county medical-community platform. "
                    "FHIR R4 at /fhir/R4, OAuth2 at /auth/token, web UI at /ui.",
        # In production the API description is for signed-in admins only (_admin_docs); open in development.
        # /docs and /redoc are ours (_docs_pages) so that their scripts come from this server, not a CDN.
        openapi_url=None if production else "/openapi.json", docs_url=None, redoc_url=None,
    )
    app.state.sessionmaker = factory
    app.state.settings = settings
    errors.install(app)
    openapi_doc.install(app)  # the document declares every status and media type it answers (issue 26)
    # Body limits, credentials before bodies and Cache-Control: no-store (issue 26): before any parsing.
    app.add_middleware(RequestLimits, settings=settings)
    if production:
        _admin_docs(app)
    else:
        _docs_pages(app, guard=None)
    app.include_router(auth_router)
    app.include_router(api_router)
    app.include_router(scheduling_api_router)
    app.include_router(records_api_router)
    app.include_router(family_api_router)  # /api/family
    app.include_router(family_devices_router)  # /api/devices/readings
    app.include_router(referral_api_router)  # /api/referrals
    app.include_router(immunization_api_router)  # /api/immunization: stock, inbound, the vaccination desk
    app.include_router(maternal_child_api_router)  # /api/maternal-child: pregnancy, child health, screening
    app.include_router(recognition_api_router)  # /api/recognition/check, /decisions
    app.include_router(recognition_cds_router)  # CDS Hooks: /cds-services
    app.include_router(recognition_web_router)  # /ui/orders: the order screen with the recognition check
    app.include_router(notify_api_router)  # /api/notify: webhooks, delivery log, redeliver
    app.include_router(fhir_router)  # /fhir/R4: the one FHIR façade, built from every domain's declared types
    app.include_router(analytics_api_router)  # /api/indicators, /api/cockpit, /api/reports
    app.include_router(web_router)
    app.include_router(web_mpi_router)
    app.include_router(scheduling_web_router)
    app.include_router(referral_web_router)  # /ui/referrals
    app.include_router(immunization_web_router)  # /ui/immunization: the vaccination desk, observation
    app.include_router(maternal_child_web_router)  # /ui/maternal-child: 妇幼 pages
    app.include_router(family_web_router)  # /ui/family
    app.include_router(web_records_router)  # results timeline, HL7 inbox
    app.include_router(notify_web_router)  # /ui/notify
    app.include_router(analytics_web_router)  # /ui/cockpit
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    return app


def _admin_docs(app: FastAPI) -> None:
    """/openapi.json and /docs for a signed-in admin only (token or the web session cookie)."""

    def admin_only(principal: Principal) -> None:
        if not principal.is_admin:
            raise Forbidden("仅管理员可查看接口文档 / the API description is for administrators only")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(principal: CurrentPrincipal) -> JSONResponse:
        admin_only(principal)
        return JSONResponse(app.openapi(), headers={"Cache-Control": "no-store"})

    _docs_pages(app, guard=admin_only)


def _docs_pages(app: FastAPI, guard) -> None:
    """/docs (Swagger UI) and /redoc (ReDoc) with every script, style and icon served by this app.

    ``guard`` (the admin check in production) runs before either page is answered; None leaves them open.
    """
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    title = f"{app.title} — API"
    favicon = f"{DOCS_ASSETS_URL}/favicon.png"

    if guard is None:
        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return _swagger(app, title, favicon)

        @app.get("/redoc", include_in_schema=False)
        def redoc() -> HTMLResponse:
            return _redoc(title, favicon)

        @app.get(app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect", include_in_schema=False)
        def oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()
        return

    @app.get("/docs", include_in_schema=False)
    def admin_docs(principal: CurrentPrincipal) -> HTMLResponse:
        guard(principal)
        return _swagger(app, title, favicon)

    @app.get("/redoc", include_in_schema=False)
    def admin_redoc(principal: CurrentPrincipal) -> HTMLResponse:
        guard(principal)
        return _redoc(title, favicon)


def _swagger(app: FastAPI, title: str, favicon: str) -> HTMLResponse:
    # validatorUrl None: Swagger UI would otherwise send the document to an online validator for its badge.
    page = get_swagger_ui_html(
        openapi_url="/openapi.json", title=title, swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css", swagger_favicon_url=favicon,
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None})
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def _redoc(title: str, favicon: str) -> HTMLResponse:
    page = get_redoc_html(openapi_url="/openapi.json", title=title, redoc_favicon_url=favicon,
                          redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js", with_google_fonts=False)
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


def app_with_dispatcher() -> FastAPI:
    """The application with the notification dispatcher running in its lifespan (``onetrip serve --notify``)."""
    from onetrip.notify.dispatcher import start_background, stop_background

    app = create_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        async with inner(a) as state:
            background = start_background(a.state.sessionmaker)
            print(f"通知分发器运行中 / notify dispatcher running as {background[2].worker}", flush=True)
            try:
                yield state
            finally:
                await anyio.to_thread.run_sync(stop_background, *background)

    app.router.lifespan_context = lifespan
    return app
