"""/docs: Swagger UI from files shipped inside the package, so it works offline and asks no
third party for anything (the CDN default left the page blank without internet access).

The files are swagger-ui-dist's, unchanged; static/swagger-ui/manifest.json records the
version, the npm tarball's integrity and each file's sha256 (a test checks them), and how
to update them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_DIR: Final = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_PATH: Final = "/docs/assets"
# The only files served: nothing else from the folder (licenses, manifest) goes out.
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# A day: the files change only with a release, and their URL does not carry a version.
_CACHE = {"Cache-Control": "public, max-age=86400"}


def install_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI at /docs from the packaged assets (no ReDoc: it would need a CDN too)."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that mounts the API under a prefix, every URL carries it.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        assets = f"{root}{ASSETS_PATH}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - API documentation",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            # No badge that sends the document to the public validator service.
            swagger_ui_parameters={"validatorUrl": None, "displayOperationId": True},
        )

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def swagger_ui_asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, f"No documentation asset named {name!r}.")
        return FileResponse(ASSETS_DIR / name, media_type=media_type, headers=_CACHE)
