"""Library: groups -> users -> faces, paged; search by user id or user_info; move, copy
and delete (admin; deletes are confirmed in the browser first). Every change is the v3
call an application would make (edge/console/faces.py), its Baidu code shown on refusal."""
from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from edge.console.auth import error_response, require
from edge.console.context import CTX_KEY
from edge.console.faces import PAGE, Faces, app_ids
from edge.console.render import flash, redirect, render
from edge.sqlite import StorageError

FACES_KEY = web.AppKey("console_faces", Faces)
UNKNOWN_APP = 216110   # Baidu: appid not exist
NO_PERMISSION = 6      # what a replica's library answers a change


def _app_id(request: web.Request, values) -> str | None:
    ids = app_ids(request.app[CTX_KEY])
    chosen = values.get("app") or (ids[0] if ids else None)
    return chosen if chosen in ids else None


def _start(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("start", "0")))
    except ValueError:
        return 0


def url(path: str, **query) -> str:
    return f"/console/library{path}?" + urlencode({k: v for k, v in query.items() if v not in (None, "")})


def _no_app(request: web.Request) -> web.Response:
    return error_response(request, 404, UNKNOWN_APP, "no such library (APP_ID) on this " + request.app[CTX_KEY].role)


def _storage(request: web.Request, err: StorageError) -> web.Response:
    return error_response(request, 503, 222915, f"the library cannot be read: {err}")


@require("viewer")
async def groups(request: web.Request) -> web.Response:
    app_id = _app_id(request, request.query)
    if app_id is None:
        return _no_app(request) if app_ids(request.app[CTX_KEY]) else render(request, "library.html", app_id=None,
                                                                            apps=[], groups=[], start=0, more=False,
                                                                            error=None, url=url, page=PAGE)
    faces, start = request.app[FACES_KEY], _start(request)
    try:
        got = await faces.run(faces.groups, app_id, start)
    except StorageError as err:
        return _storage(request, err)
    names = got.result["group_id_list"] if got.ok else []
    return render(request, "library.html", app_id=app_id, apps=app_ids(request.app[CTX_KEY]), groups=names,
                  start=start, more=len(names) == PAGE, error=None if got.ok else got, url=url, page=PAGE)


@require("viewer")
async def group(request: web.Request) -> web.Response:
    app_id, group_id = _app_id(request, request.query), request.query.get("group", "")
    if app_id is None:
        return _no_app(request)
    faces, start = request.app[FACES_KEY], _start(request)
    try:
        members = await faces.run(faces.members, app_id, group_id, start)
    except StorageError as err:
        return _storage(request, err)
    return render(request, "library_group.html", app_id=app_id, group_id=group_id, members=members, start=start,
                  more=len(members) == PAGE, url=url, page=PAGE)


@require("viewer")
async def search(request: web.Request) -> web.Response:
    app_id, text = _app_id(request, request.query), request.query.get("q", "").strip()[:128]
    if app_id is None:
        return _no_app(request)
    faces = request.app[FACES_KEY]
    hits, cut = ([], False)
    if text:
        try:
            hits, cut = await faces.run(faces.search, app_id, text)
        except StorageError as err:
            return _storage(request, err)
    return render(request, "library_search.html", app_id=app_id, q=text, hits=hits, cut=cut, url=url)


@require("viewer")
async def user(request: web.Request) -> web.Response:
    app_id, user_id = _app_id(request, request.query), request.query.get("user", "")
    if app_id is None:
        return _no_app(request)
    faces = request.app[FACES_KEY]
    try:
        found, by_group = await faces.run(faces.user, app_id, user_id)
    except StorageError as err:
        return _storage(request, err)
    return render(request, "library_user.html", app_id=app_id, user_id=user_id, found=found,
                  memberships=found.result["user_list"] if found.ok else [], faces=by_group, url=url)


def field(form, key: str) -> str:
    value = form.get(key, "")
    return value.strip() if isinstance(value, str) else ""


async def _change(request: web.Request, op: str) -> web.Response:
    """One admin change from a form, then back to the page it concerns with its outcome
    (a refusal: Baidu's code and message, on the user's page)."""
    form = await request.post()
    app_id = _app_id(request, {"app": field(form, "app")})
    if app_id is None:
        return _no_app(request)
    faces, user_id, group_id = request.app[FACES_KEY], field(form, "user"), field(form, "group")
    user_page = url("/user", app=app_id, user=user_id)
    try:
        if op == "group":
            answer = await faces.run(faces.add_group, app_id, group_id)
            done, back = f"group {group_id} created", url("", app=app_id)
        elif op in ("copy", "move"):
            dst = field(form, "dst")
            answer = await faces.run(getattr(faces, op), app_id, user_id, group_id, dst)
            done, back = f"{user_id} {'copied' if op == 'copy' else 'moved'} from {group_id} to {dst}", user_page
        elif op == "delete":
            answer = await faces.run(faces.delete_user, app_id, group_id, user_id)
            done, back = f"{user_id} deleted from {group_id}", url("/group", app=app_id, group=group_id)
        else:
            token = field(form, "face_token")
            answer = await faces.run(faces.delete_face, app_id, group_id, user_id, token)
            done, back = f"face {token} of {user_id} deleted", user_page
    except StorageError as err:
        return _storage(request, err)
    if answer.ok:
        faces.written(app_id)
        flash(request, done)
        return redirect(back)
    message = answer.error_msg
    if answer.error_code == NO_PERMISSION and (hub := await faces.run(faces.replica_of, app_id)):
        message += f": this library follows the hub {hub}; change it there"
    flash(request, message, answer.error_code)
    return redirect(back if op == "group" else user_page)


def _changer(op: str):
    """The admin-only POST handler of one library change (the ops of `_change`)."""
    @require("admin")
    async def handler(request):
        return await _change(request, op)
    return handler


def setup(app: web.Application, ctx) -> None:
    app[FACES_KEY] = Faces(ctx)
    app.router.add_get("/library", groups, name="library")
    app.router.add_get("/library/group", group, name="library_group")
    app.router.add_get("/library/search", search, name="library_search")
    app.router.add_get("/library/user", user, name="library_user")
    app.router.add_post("/library/group", _changer("group"))
    app.router.add_post("/library/user/copy", _changer("copy"))
    app.router.add_post("/library/user/move", _changer("move"))
    app.router.add_post("/library/user/delete", _changer("delete"))
    app.router.add_post("/library/face/delete", _changer("face"))
