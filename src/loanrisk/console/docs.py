"""``/docs`` (Swagger UI) and ``/redoc`` from assets shipped in the package
(``loanrisk/static/vendor``), so the API's pages work in an air-gapped cluster."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

VENDOR = "/console/static/vendor"
FAVICON = "/console/static/favicon.svg"


def install(app: FastAPI) -> None:
    """Replace FastAPI's CDN-backed documentation pages (create the app with ``docs_url`` and
    ``redoc_url`` None)."""
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{VENDOR}/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
