"""The tuning page's web server: aiohttp on 127.0.0.1, one token, one render thread.

Routes (every one needs the token: ``?token=`` once, then the same-site cookie it sets):

- ``GET /``: the page; ``GET /static/tune.js``, ``/static/tune.css``: its assets (a fixed set,
  never a path from the request).
- ``GET /api/session``: the clip, the controls (from the registry) and their starting values.
- ``GET /api/image?frame=N&view=restored|original|diff&format=jpeg|png&crop=X,Y,W,H&seq=K&set=KEY=VALUE...``:
  a frame; ``set`` are ``--set`` strings. Requests with a ``seq`` older than the newest one seen
  (per view slot) are dropped with 409, so a stale image is never rendered after a newer one.
- ``GET /api/track?set=...``: the estimated blur of every frame (estimated kinds), computed in
  the background: ``{"state": "running", "done": k}`` until ``{"state": "done", "rows": [...]}``.
- ``POST /api/save`` ``{"settings": [...], "to_config": false}``: writes the config (needs the
  ``X-Tune-Token`` header too, so no other page can make the browser post it).

Bad parameters answer 400 with ``{"error": "..."}`` (the page shows it); the server never dies of
a request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import sys
import threading
import webbrowser
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

from aiohttp import web

from videodeblur.errors import ConfigError, InvalidParameterError, VideoDeblurError
from videodeblur.tune.session import Superseded, TuneSession, parse_crop

HOST = "127.0.0.1"
COOKIE = "videodeblur_tune"
TOKEN_HEADER = "X-Tune-Token"
#: The page's own files, read once; nothing else is ever served from disk.
ASSETS = {"tune.js": "application/javascript", "tune.css": "text/css"}

log = logging.getLogger("videodeblur.tune")

_SESSION = web.AppKey("session", TuneSession)
_TOKEN = web.AppKey("token", str)
_STATE = web.AppKey("state", dict)


def new_token() -> str:
    """A random 128-bit token, as 32 hex digits."""
    return secrets.token_hex(16)


def _asset(name: str) -> str:
    return resources.files("videodeblur.tune").joinpath("static", name).read_text(encoding="utf-8")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _message(error: Exception) -> str:
    if isinstance(error, ConfigError):
        return "; ".join(error.problems)
    return str(error)


@web.middleware
async def _guard(request: web.Request, handler):
    """Loopback Host only, and the token (query once, then the cookie), compared in constant time."""
    token = request.app[_TOKEN]
    port = request.app[_STATE].get("port")
    host = request.headers.get("Host", "")
    if port is not None and host not in (f"{HOST}:{port}", f"localhost:{port}"):
        # Another name for this address (DNS rebinding) is not this page.
        return web.Response(status=403, text="videodeblur tune: unknown host\n")
    offered = request.query.get("token")
    by_query = offered is not None and hmac.compare_digest(offered.encode(), token.encode())
    by_cookie = hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), token.encode())
    if not (by_query or by_cookie):
        return web.Response(status=403, text="videodeblur tune: open the address with its token, as "
                                             "`videodeblur tune` printed it\n")
    if request.method == "POST":
        header = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(header.encode(), token.encode()):
            return web.Response(status=403, text=f"videodeblur tune: a POST needs the {TOKEN_HEADER} header\n")
    try:
        response = await handler(request)
    except web.HTTPException:
        raise
    except Exception as error:  # noqa: BLE001 - a request never kills the server
        log.exception("request %s failed", request.path)
        response = _error(500, f"internal error: {type(error).__name__}: {error}")
    if by_query:
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def _page(request: web.Request) -> web.Response:
    page = _asset("index.html").replace("{{TOKEN}}", request.app[_TOKEN])
    return web.Response(text=page, content_type="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
                                                            "style-src 'self'; script-src 'self'"})


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.Response(text=_asset(name), content_type=ASSETS[name])


def _settings(request: web.Request) -> list[str]:
    return list(request.query.getall("set", []))


def _int(request: web.Request, name: str, default=None) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        if default is None and name == "frame":
            raise InvalidParameterError("frame is required")
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidParameterError(f"{name} must be a whole number, got {text!r}") from None


async def _run(request: web.Request, function, *args):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[_STATE]["executor"], function, *args)


async def _session_info(request: web.Request) -> web.Response:
    session = request.app[_SESSION]
    return web.json_response(await _run(request, session.description))


async def _image(request: web.Request) -> web.Response:
    session = request.app[_SESSION]
    try:
        frame = _int(request, "frame")
        view = request.query.get("view", "restored")
        sequence = _int(request, "seq", 0)
        slot = "original" if view == "original" else "view"
        crop = parse_crop(request.query.get("crop"))
        image_format = request.query.get("format", "jpeg")
        session.claim(slot, sequence)
        image = await _run(request, session.image, frame, view, _settings(request), crop, image_format,
                           sequence, slot)
    except Superseded:
        return _error(409, "superseded by a newer request")
    except VideoDeblurError as error:
        return _error(400, _message(error))
    headers = {"X-Label": image.label.encode("ascii", "replace").decode()}
    if image.media_type == "image/png":
        headers["Content-Disposition"] = f'inline; filename="frame_{frame:06d}.png"'
    return web.Response(body=image.data, content_type=image.media_type, headers=headers)


async def _track(request: web.Request) -> web.Response:
    """The estimated track, computed once per [psf] settings in a thread of its own."""
    session, state = request.app[_SESSION], request.app[_STATE]
    settings = _settings(request)
    try:
        config = session.config(settings)
    except VideoDeblurError as error:
        return _error(400, _message(error))
    from videodeblur import registry

    if config.psf.kind not in registry.estimated_kinds():
        return web.json_response({"state": "none"})
    key = repr((config.psf, config.trim, config.deconvolution.light))
    tracks = state["tracks"]
    with state["lock"]:
        job = tracks.get(key)
        if job is None:
            job = tracks[key] = {"state": "running", "done": 0, "total": session.previewer.frame_count}

            def work():
                def advance():
                    job["done"] += 1

                try:
                    job["rows"] = session.track(settings, progress=advance)
                    job["state"] = "done"
                except Exception as error:  # noqa: BLE001 - reported on the page
                    job["state"], job["error"] = "error", _message(error)

            threading.Thread(target=work, name="videodeblur-track", daemon=True).start()
    return web.json_response({k: v for k, v in job.items()})


async def _save(request: web.Request) -> web.Response:
    session = request.app[_SESSION]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "the body must be JSON")
    if not isinstance(body, dict) or not isinstance(body.get("settings", []), list):
        return _error(400, 'the body must be {"settings": ["KEY=VALUE", ...], "to_config": false}')
    try:
        saved = await _run(request, session.save, [str(s) for s in body.get("settings", [])],
                           bool(body.get("to_config", False)))
    except VideoDeblurError as error:
        return _error(400, _message(error))
    return web.json_response(saved)


def make_app(session: TuneSession, token: str) -> web.Application:
    """The tuning page's application for ``session``, guarded by ``token``."""
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[_SESSION] = session
    app[_TOKEN] = token
    # One render thread: the session's video reader is not shared between threads, and the
    # restoration itself is what the cores are for.
    app[_STATE] = {"executor": ThreadPoolExecutor(1, thread_name_prefix="videodeblur-tune"),
                   "tracks": {}, "lock": threading.Lock(), "port": None}
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/favicon.ico", lambda request: web.Response(status=204))
    app.router.add_get("/api/session", _session_info)
    app.router.add_get("/api/image", _image)
    app.router.add_get("/api/track", _track)
    app.router.add_post("/api/save", _save)

    async def _close(app):
        app[_STATE]["executor"].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(_close)
    return app


async def start(session: TuneSession, port: int = 0, token: str | None = None):
    """Start serving ``session`` on 127.0.0.1; returns ``(runner, url)``. Stop with ``runner.cleanup()``."""
    token = token or new_token()
    app = make_app(session, token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise InvalidParameterError(f"--port {port}: cannot listen on {HOST}:{port} ({error.strerror})") from None
    bound = site._server.sockets[0].getsockname()[1]  # the free port chosen for port 0
    app[_STATE]["port"] = bound
    return runner, f"http://{HOST}:{bound}/?token={token}"


def serve(session: TuneSession, port: int = 0, open_browser: bool = False, out=None) -> None:
    """Serve until interrupted (Ctrl-C raises KeyboardInterrupt after the server has stopped).

    The page's address is the first line written to ``out`` (standard output by default).
    """
    out = out or sys.stdout

    async def main():
        runner, url = await start(session, port)
        try:
            print(url, file=out, flush=True)
            if open_browser:
                webbrowser.open(url)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
