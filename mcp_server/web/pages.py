"""The dashboard's pages: each finds its viewer, opens the viewer's store, calls a `memory`
operation and renders a template. The tenant comes from the viewer alone."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from mcp_server.errors import HTTP_STATUS, BulkheadError, InvalidInput
from mcp_server.memory import inspection, reflection
from mcp_server.memory.arguments import MAX_MEMORY_IDS, MAX_RESULTS
from mcp_server.memory.operations import forget, recall_ranked
from mcp_server.runtime import Runtime
from mcp_server.store import TenantStore
from mcp_server.web.assets import TEMPLATES
from mcp_server.web.security import SignInLimiter, same_origin
from mcp_server.web.sessions import Sessions, Viewer, csrf_matches

MAX_KEY_CHARS = 4096
NOT_A_KEY = "That key is not valid."
TOO_MANY = "Too many failed sign-ins from here; wait a few minutes and try again."
NO_MODEL = "no model endpoint is configured for this server"


def _environment() -> jinja2.Environment:
    # Autoescape everything: memory text is written by agents that may have been prompt-injected.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["when"] = lambda value: value.isoformat(sep=" ", timespec="seconds") if value else ""
    env.filters["signal"] = lambda value: "" if value is None else f"{value:.4f}"
    env.filters["pretty_json"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return env


class Dashboard:
    """The pages over one runtime; `sessions` says who is looking."""

    def __init__(self, runtime: Runtime, sessions: Sessions, limiter: SignInLimiter | None = None) -> None:
        self.runtime = runtime
        self.sessions = sessions
        self.limiter = limiter or SignInLimiter()
        self.env = _environment()

    # -- helpers ------------------------------------------------------------------------------

    def url(self, request: Request, name: str, query: dict[str, Any] | None = None, **params: str) -> str:
        """The path of route `name` under the dashboard's mount, with an optional query string."""
        root: str = request.scope.get("root_path", "")
        path = root + str(request.app.url_path_for(name, **params))
        pairs = [(k, v) for k, v in (query or {}).items() if v not in (None, "", [], ())]
        return path + ("?" + urlencode(pairs, doseq=True) if pairs else "")

    def render(
        self, request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """A page or fragment; every template may name routes and the viewer."""

        def url(name: str, query: dict[str, Any] | None = None, **params: str) -> str:
            return self.url(request, name, query, **params)

        body: str = self.env.get_template(template).render(
            viewer=viewer, url=url, auth_enabled=self.sessions.auth_enabled, status=status, **context
        )
        return HTMLResponse(body, status_code=status)

    async def viewer(self, request: Request) -> Viewer:
        """The request's viewer; without one, a redirect to the sign-in page (raised)."""
        viewer = await self.sessions.viewer(request)
        if viewer is None:
            raise SignInRequired()
        return viewer

    async def store(self, viewer: Viewer) -> TenantStore:
        return await self.runtime.store_for(viewer.tenant)

    async def changing(self, request: Request) -> tuple[Viewer, dict[str, Any]]:
        """The viewer and form of a POST that changes something, once its origin and CSRF token pass."""
        if not same_origin(request.headers):
            raise HTTPException(403, "This request did not come from a dashboard page.")
        viewer = await self.viewer(request)
        form = await request.form()
        token = form.get("csrf")
        if not csrf_matches(viewer, token if isinstance(token, str) else None):
            raise HTTPException(403, "The form's security token is missing or stale; reload the page and try again.")
        return viewer, {k: form.getlist(k) for k in form}

    # -- sign-in ------------------------------------------------------------------------------

    async def sign_in_page(self, request: Request) -> Response:
        if not self.sessions.auth_enabled or await self.sessions.viewer(request) is not None:
            return RedirectResponse(self.url(request, "banks"), status_code=303)
        return self.render(request, "sign_in.html", None)

    async def sign_in(self, request: Request) -> Response:
        if not same_origin(request.headers):
            raise HTTPException(403, "This request did not come from a dashboard page.")
        if not self.sessions.auth_enabled:
            return RedirectResponse(self.url(request, "banks"), status_code=303)
        client = request.client.host if request.client else "-"
        if not self.limiter.allowed(client):
            return self.render(request, "sign_in.html", None, status=429, message=TOO_MANY)
        form = await request.form()
        key = form.get("key")
        done = RedirectResponse(self.url(request, "banks"), status_code=303)
        if isinstance(key, str) and 0 < len(key) <= MAX_KEY_CHARS and await self.sessions.sign_in(key, done):
            return done
        self.limiter.failed(client)
        return self.render(request, "sign_in.html", None, status=401, message=NOT_A_KEY)

    async def sign_out(self, request: Request) -> Response:
        viewer, _ = await self.changing(request)
        done = RedirectResponse(self.url(request, "sign_in"), status_code=303)
        await self.sessions.sign_out(viewer, done)
        return done

    # -- pages --------------------------------------------------------------------------------

    async def banks(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        banks = await inspection.banks(await self.store(viewer))
        return self.render(request, "banks.html", viewer, banks=banks, deleted=_count(request, "deleted"))

    async def bank(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        store = await self.store(viewer)
        bank = await inspection.known_bank(store, request.path_params["bank"])
        params = request.query_params
        filters = {
            "order": params.get("order") or "retained",
            "text": params.get("text"),
            "tags": params.get("tags"),
            "since": params.get("since"),
            "until": params.get("until"),
        }
        query = inspection.page_query(
            bank,
            order=filters["order"] or "retained",
            text=filters["text"],
            tags=(filters["tags"] or "").split(","),
            since=filters["since"],
            until=filters["until"],
            after_seq=params.get("after_seq"),
            after_when=params.get("after_when"),
        )
        rows = await inspection.page(store, query)
        more = {**filters, **inspection.cursor(rows[-1])} if len(rows) == query.rows else None
        template = "_memories.html" if "hx-request" in request.headers else "bank.html"
        return self.render(
            request,
            template,
            viewer,
            bank=bank,
            memories=rows,
            filters=filters,
            more=more,
            first_page=query.after_seq is None,
            deleted=_count(request, "deleted"),
        )

    async def memory(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        store = await self.store(viewer)
        bank, memory_id = request.path_params["bank"], request.path_params["memory_id"]
        detail = await inspection.memory(store, bank, memory_id)
        return self.render(request, "memory.html", viewer, bank=bank, detail=detail)

    async def recall(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        store = await self.store(viewer)
        bank = await inspection.known_bank(store, request.path_params["bank"])
        query = request.query_params.get("query") or ""
        max_results = _count(request, "max_results") or 10
        found = None
        if query.strip():
            if not 1 <= max_results <= MAX_RESULTS:
                raise InvalidInput(f"max_results must be between 1 and {MAX_RESULTS}.")
            found = await recall_ranked(
                store, query=query, bank=bank, max_results=max_results, embedder=self.runtime.embedder
            )
        template = "_results.html" if "hx-request" in request.headers else "recall.html"
        return self.render(request, template, viewer, bank=bank, query=query, max_results=max_results, found=found)

    async def reflect(self, request: Request) -> Response:
        """The `reflect` tool's answer, with its mode and citations; reads only."""
        viewer = await self.viewer(request)
        store = await self.store(viewer)
        bank = await inspection.known_bank(store, request.path_params["bank"])
        query = request.query_params.get("query") or ""
        answered = None
        if query.strip():
            # The configured endpoint, else extraction: a browser offers no model to sample.
            synthesiser = self.runtime.synthesiser
            answered = await reflection.reflect(
                store,
                query=query,
                bank=bank,
                embedder=self.runtime.embedder,
                synthesisers=[synthesiser] if synthesiser is not None else [],
                fallback=None if synthesiser is not None else NO_MODEL,
            )
        return self.render(request, "reflect.html", viewer, bank=bank, query=query, answered=answered)

    async def forget_page(self, request: Request) -> Response:
        """The confirmation: names exactly what the button will delete. Changes nothing."""
        viewer = await self.viewer(request)
        store = await self.store(viewer)
        totals = await inspection.bank_totals(store, request.path_params["bank"])
        params = request.query_params
        ids = params.getlist("memory_id")[:MAX_MEMORY_IDS]
        document_id = params.get("document_id")
        whole = params.get("everything") == "1"
        selected, document_size = [], 0
        if ids:
            selected = await inspection.memories(store, totals.name, ids)
            if not selected:
                raise inspection.memory_not_found()
        elif document_id:
            document_size = await inspection.document_size(store, totals.name, document_id)
        elif not whole:
            raise InvalidInput("choose memories, a document or the whole bank to forget.")
        return self.render(
            request,
            "confirm.html",
            viewer,
            bank=totals,
            selected=selected,
            document_id=document_id if not ids else None,
            document_size=document_size,
            whole=whole and not ids and not document_id,
        )

    async def forget(self, request: Request) -> Response:
        viewer, form = await self.changing(request)
        store = await self.store(viewer)
        bank = inspection.path_bank(request.path_params["bank"])
        ids, documents = form.get("memory_id", []), form.get("document_id", [])
        if form.get("everything") == ["1"] and not ids and not documents:
            deleted = await inspection.forget_bank(store, bank)
            return RedirectResponse(self.url(request, "banks", {"deleted": deleted}), status_code=303)
        result = await forget(store, bank=bank, memory_ids=ids or None, document_id=documents[0] if documents else None)
        return RedirectResponse(self.url(request, "bank", {"deleted": result.deleted}, bank=bank), status_code=303)

    async def export(self, request: Request) -> Response:
        viewer = await self.viewer(request)
        store = await self.store(viewer)
        bank = await inspection.known_bank(store, request.path_params["bank"])

        async def lines() -> AsyncIterator[bytes]:
            async for item in inspection.export(store, bank):
                yield (json.dumps(item, ensure_ascii=False) + "\n").encode()

        disposition = f'attachment; filename="{bank}.jsonl"'
        return StreamingResponse(
            lines(), media_type="application/x-ndjson", headers={"Content-Disposition": disposition}
        )

    # -- errors -------------------------------------------------------------------------------

    async def failed(self, request: Request, exc: Exception) -> Response:
        """A refused request: the error's one sentence, with the status its kind maps to."""
        if isinstance(exc, SignInRequired):
            target = self.url(request, "sign_in")
            if "hx-request" in request.headers:
                return Response(status_code=401, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        if isinstance(exc, BulkheadError):
            status, message = HTTP_STATUS[exc.kind], exc.message
        elif isinstance(exc, HTTPException):
            status = exc.status_code
            message = exc.detail if status != 404 else "There is nothing at this address."
        else:
            raise exc
        viewer = await self.sessions.viewer(request) if status != 403 else None
        return self.render(request, "error.html", viewer, status=status, message=message)


class SignInRequired(Exception):
    """The request has no live session; the answer is the sign-in page."""


def _count(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return int(value) if value is not None and value.isdigit() and len(value) < 10 else None
