"""`RemoteBackend`: the `ChatBackend` protocol over `/api/v1/chat` (HTTP + SSE).

Each method is one route of DESIGN.md §3, so this module is a mapping and not a
translation: request bodies are the `core.payloads` models, answers are validated into the
`core.models` resources, errors come back as the `core.errors` classes named by the
server's envelope. The transport policy (timeouts, retries, auth, redirects, size caps)
is `http.ApiHttp`; the reply streams and their reconnection are `sse.ReplyStream`.

Every write that is not idempotent by nature (create, send, regenerate, cancel, read)
carries an `Idempotency-Key`, so a retry after a lost answer gets the first result again
instead of a second thread or a second, billed generation (T67).

`aclose()` closes the connections only: a reply still streaming keeps running on the
server, as it does when the hosted API's client goes away; `cancel_message` stops it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from tenex_tui.core.errors import InvalidRequest, RemoteUnavailable, TenexError
from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import (
    Agent,
    BackendInfo,
    Message,
    Page,
    SearchHit,
    Thread,
    ThreadContext,
)
from tenex_tui.core.payloads import (
    AttachmentInput,
    CreateThreadBody,
    EditMessageBody,
    RegenerateBody,
    SendMessageBody,
    UpdateThreadBody,
)
from tenex_tui.core.secrets import Secret
from tenex_tui.remote.http import (
    DEFAULT_TIMEOUT,
    ApiHttp,
    RetryPolicy,
    Sleep,
    new_idempotency_key,
)
from tenex_tui.remote.knowledge import KnowledgeClient
from tenex_tui.remote.sse import ReplyStream, ResumePolicy

DEFAULT_API_BASE = "https://api.10ex.ai"
"""Where `TENEX_API_BASE` points when it is not set."""

T = TypeVar("T")
B = TypeVar("B", bound=pydantic.BaseModel)
_SSE_HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-store"}


class RemoteBackend(KnowledgeClient):
    """A remote 10ex workspace (or `tenex-tui serve`) as a `ChatBackend`.

    Args:
        base_url: The API base, such as `https://api.10ex.ai`.
        api_key: A `tnx_<prefix>_<secret>` key, kept secret.
        retry: Retry and deadline policy of ordinary calls.
        resume: Reconnection policy of reply streams.
        timeout: httpx per-phase timeouts.
        allow_insecure: Allow plain HTTP to a non-loopback host and unverified TLS.
        verify: TLS verification (False needs `allow_insecure`).
        proxy: An explicit proxy (environment proxies are ignored, see `http.py`).
        transport: An httpx transport for tests.
        sleep: The wait between retries and reconnections (a fake in tests).
        rng: The jitter source (seeded in tests).
        stream_connect_deadline: How long a stream may take to send its headers.

    Raises:
        InvalidRequest: When the base URL or TLS settings break the transport policy.
    """

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        *,
        retry: RetryPolicy | None = None,
        resume: ResumePolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        allow_insecure: bool = False,
        verify: bool = True,
        proxy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        stream_connect_deadline: float = 30.0,
    ) -> None:
        self._http = ApiHttp(
            base_url,
            api_key,
            retry=retry,
            timeout=timeout,
            allow_insecure=allow_insecure,
            verify=verify,
            proxy=proxy,
            transport=transport,
            sleep=sleep,
            rng=rng,
        )
        self._resume = resume or ResumePolicy()
        self._stream_deadline = stream_connect_deadline
        self._workspace_name: str | None = None
        self.workspace_id: str | None = None
        """The key's workspace, once `info()` has asked the server."""
        self.user_id: str | None = None
        """The key's user, once `info()` has asked the server."""

    def __repr__(self) -> str:
        return f"RemoteBackend({str(self._http.base_url)!r})"

    @property
    def online(self) -> bool | None:
        """The outcome of the last request (None before any), without a new request."""
        return self._http.online

    @property
    def insecure(self) -> bool:
        """True when TLS checks or plain HTTP were allowed: show a persistent warning."""
        return self._http.insecure

    @property
    def http(self) -> ApiHttp:
        """The HTTP policy layer (for diagnostics and tests)."""
        return self._http

    # -- helpers ---------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: pydantic.BaseModel | None = None,
        idempotent_post: bool = False,
    ) -> Any:
        json_body = None
        if body is not None:
            json_body = body.model_dump(mode="json", exclude_none=True)
        key = new_idempotency_key() if idempotent_post else None
        answer = await self._http.request(
            method, path, params=params, json_body=json_body, idempotency_key=key
        )
        return answer.data

    def _parse(self, model: type[T], data: Any, method: str, path: str) -> T:
        adapter: pydantic.TypeAdapter[T] = pydantic.TypeAdapter(model)
        try:
            return adapter.validate_python(data)
        except pydantic.ValidationError:
            raise RemoteUnavailable(
                f"{self._http.endpoint(method, path)} on {self._http.host} answered "
                "with something that is not the API's resource."
            ) from None

    def _page(self, model: type[T], data: Any, method: str, path: str) -> Page[T]:
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise RemoteUnavailable(
                f"{self._http.endpoint(method, path)} on {self._http.host} answered "
                "without the list envelope (`items`, `next_cursor`)."
            )
        page_type: type[Page[T]] = Page[model]  # type: ignore[valid-type]
        return self._parse(page_type, data, method, path)

    @staticmethod
    def _body(body_type: type[B], /, **fields: Any) -> B:
        """Build a request body, turning a local validation failure into the same
        `InvalidRequest` the server would answer (a title too long, …)."""
        try:
            return body_type(**fields)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise InvalidRequest(f"Invalid request: {where}: {first['msg']}.") from None

    @staticmethod
    def _params(**values: object) -> dict[str, str]:
        params: dict[str, str] = {}
        for name, value in values.items():
            if value is None:
                continue
            if isinstance(value, bool):
                params[name] = "true" if value else "false"
            else:
                params[name] = str(value)
        return params

    # -- ChatBackend -----------------------------------------------------------

    async def info(self) -> BackendInfo:
        """Describe the remote workspace (`GET /me`, an extension); never raises.

        Returns:
            Kind `remote`, the workspace's name, and `online` from this request (or
            the last one, when this one failed).
        """
        try:
            data = await self._call("GET", "/me")
            if not isinstance(data, dict):
                raise RemoteUnavailable("GET /me answered without an object.")
            info = BackendInfo.model_validate(data.get("info") or {})
            self.workspace_id = str(data.get("workspace_id") or "") or None
            self.user_id = str(data.get("user_id") or "") or None
            self._workspace_name = info.workspace
            return info.model_copy(update={"kind": "remote", "online": True})
        except (TenexError, pydantic.ValidationError) as exc:
            problem = (
                str(exc)
                if isinstance(exc, TenexError)
                else "The server's answer to GET /me is not the API's."
            )
            return BackendInfo(
                kind="remote",
                workspace=self._workspace_name or self._http.host,
                # Reachable but refusing (a revoked key) is online; a timeout is not.
                online=self._http.online is True,
                model=None,
                model_problem=problem,
            )

    async def create_thread(
        self,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        agent: str | None = None,
        context: ThreadContext | None = None,
        model: str | None = None,
    ) -> Thread:
        """Create a thread (`POST /threads`); see `ChatBackend.create_thread`."""
        body = self._body(
            CreateThreadBody,
            title=title,
            system_prompt=system_prompt,
            agent=agent,
            context=context,
            model=model,
        )
        data = await self._call("POST", "/threads", body=body, idempotent_post=True)
        return self._parse(Thread, data, "POST", "/threads")

    async def list_threads(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        archived: bool | None = False,
        pinned: bool | None = None,
        agent: str | None = None,
        q: str | None = None,
    ) -> Page[Thread]:
        """List threads (`GET /threads`); see `ChatBackend.list_threads`."""
        params = self._params(
            limit=limit,
            cursor=cursor,
            archived="all" if archived is None else archived,
            pinned=pinned,
            agent=agent,
            q=q,
        )
        data = await self._call("GET", "/threads", params=params)
        return self._page(Thread, data, "GET", "/threads")

    async def get_thread(self, thread_id: str) -> Thread:
        """Return one thread (`GET /threads/{id}`)."""
        path = f"/threads/{_seg(thread_id)}"
        return self._parse(Thread, await self._call("GET", path), "GET", path)

    async def update_thread(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        pinned: bool | None = None,
        archived: bool | None = None,
        draft: str | None = None,
    ) -> Thread:
        """Rename, pin, archive, or save a draft (`PATCH /threads/{id}`)."""
        path = f"/threads/{_seg(thread_id)}"
        body = self._body(
            UpdateThreadBody, title=title, pinned=pinned, archived=archived, draft=draft
        )
        data = await self._call("PATCH", path, body=body)
        return self._parse(Thread, data, "PATCH", path)

    async def mark_read(self, thread_id: str) -> Thread:
        """Mark the thread read (`POST /threads/{id}/read`, an extension)."""
        path = f"/threads/{_seg(thread_id)}/read"
        data = await self._call("POST", path, idempotent_post=True)
        return self._parse(Thread, data, "POST", path)

    async def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and its messages (`DELETE /threads/{id}`)."""
        await self._call("DELETE", f"/threads/{_seg(thread_id)}")

    async def list_messages(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        order: Literal["asc", "desc"] = "asc",
    ) -> Page[Message]:
        """Page through history (`GET /threads/{id}/messages`)."""
        path = f"/threads/{_seg(thread_id)}/messages"
        params = self._params(limit=limit, cursor=cursor, order=order)
        data = await self._call("GET", path, params=params)
        return self._page(Message, data, "GET", path)

    async def get_message(self, thread_id: str, message_id: str) -> Message:
        """Return one message (`GET /threads/{id}/messages/{message_id}`)."""
        path = f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}"
        return self._parse(Message, await self._call("GET", path), "GET", path)

    def send_message(
        self,
        thread_id: str,
        content: str,
        *,
        attachments: Sequence[AttachmentInput] = (),
        knowledge: Sequence[str] = (),
        lead: str | None = None,
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Send a message and stream the reply (`POST /threads/{id}/messages`).

        The POST carries an `Idempotency-Key` (the `client_request_id` when given), so
        it is retried safely; once the reply has started, a dropped stream reconnects
        to the events route with `Last-Event-ID` (no lost or doubled token).
        """
        body = self._body(
            SendMessageBody,
            content=content,
            attachments=list(attachments),
            knowledge=list(knowledge),
            lead=lead,
            client_request_id=client_request_id,
        )
        key = client_request_id or new_idempotency_key()
        path = f"/threads/{_seg(thread_id)}/messages"
        return self._post_stream(thread_id, path, body, key)

    def regenerate(
        self,
        thread_id: str,
        *,
        mode: Literal["regenerate", "continue"] = "regenerate",
        client_request_id: str | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Answer the last user message again (`POST /threads/{id}/regenerate`)."""
        body = self._body(
            RegenerateBody, mode=mode, client_request_id=client_request_id
        )
        key = client_request_id or new_idempotency_key()
        path = f"/threads/{_seg(thread_id)}/regenerate"
        return self._post_stream(thread_id, path, body, key)

    async def edit_message(
        self, thread_id: str, message_id: str, content: str
    ) -> Message:
        """Edit the last user message (`PATCH /threads/{id}/messages/{message_id}`)."""
        path = f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}"
        body = self._body(EditMessageBody, content=content)
        data = await self._call("PATCH", path, body=body)
        return self._parse(Message, data, "PATCH", path)

    def stream_events(
        self, thread_id: str, message_id: str, *, after: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Resume a reply's stream (`GET …/messages/{message_id}/events`)."""

        def open_first(last: str | None) -> AbstractAsyncContextManager[httpx.Response]:
            return self._open_events(thread_id, message_id, last)

        stream = ReplyStream(
            open_first=open_first,
            open_resume=lambda mid, last: self._open_events(thread_id, mid, last),
            fetch_message=self.get_message,
            thread_id=thread_id,
            policy=self._resume,
            sleep=self._http.sleep,
            rand=self._http.rng.random,
            describe=self._http.endpoint(
                "GET",
                f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}/events",
            ),
            redact=self._http.redact,
            first_retryable=True,
            message_id=message_id,
            after=after,
        )
        return aiter(stream)

    async def cancel_message(self, thread_id: str, message_id: str) -> Message:
        """Stop a reply (`POST /threads/{id}/messages/{message_id}/cancel`)."""
        path = f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}/cancel"
        data = await self._call("POST", path, idempotent_post=True)
        return self._parse(Message, data, "POST", path)

    async def search(
        self, q: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[SearchHit]:
        """Full-text search (`GET /search`)."""
        params = self._params(q=q, limit=limit, cursor=cursor)
        data = await self._call("GET", "/search", params=params)
        return self._page(SearchHit, data, "GET", "/search")

    async def list_models(self) -> list[str]:
        """The server's models (`GET /models`, an extension)."""
        data = await self._call("GET", "/models")
        page = self._page(str, data, "GET", "/models")
        return list(page.items)

    async def list_agents(self) -> list[Agent]:
        """The server's agents (`GET /agents`, an extension)."""
        data = await self._call("GET", "/agents")
        page = self._page(Agent, data, "GET", "/agents")
        return list(page.items)

    async def aclose(self) -> None:
        """Close the connections (server-side replies keep running)."""
        await self._http.aclose()

    # -- streams ---------------------------------------------------------------

    def _post_stream(
        self, thread_id: str, path: str, body: pydantic.BaseModel, key: str
    ) -> AsyncIterator[StreamEvent]:
        json_body = body.model_dump(mode="json", exclude_none=True)

        def open_first(
            _last: str | None,
        ) -> AbstractAsyncContextManager[httpx.Response]:
            # The same key on every attempt: the server replays the first send's
            # stream from its start, and the reader drops the events it already has.
            return self._http.stream(
                "POST",
                path,
                json_body=json_body,
                headers=_SSE_HEADERS,
                idempotency_key=key,
                connect_deadline=self._stream_deadline,
            )

        stream = ReplyStream(
            open_first=open_first,
            open_resume=lambda mid, last: self._open_events(thread_id, mid, last),
            fetch_message=self.get_message,
            thread_id=thread_id,
            policy=self._resume,
            sleep=self._http.sleep,
            rand=self._http.rng.random,
            describe=self._http.endpoint("POST", path),
            redact=self._http.redact,
            first_retryable=True,
        )
        return aiter(stream)

    def _open_events(
        self, thread_id: str, message_id: str, last_event_id: str | None
    ) -> AbstractAsyncContextManager[httpx.Response]:
        headers = dict(_SSE_HEADERS)
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return self._http.stream(
            "GET",
            f"/threads/{_seg(thread_id)}/messages/{_seg(message_id)}/events",
            headers=headers,
            connect_deadline=self._stream_deadline,
        )


def _seg(value: str) -> str:
    """Quote an id for a URL path segment (ids are opaque; never let one add a path)."""
    return quote(value, safe="")


def build_remote_backend(
    api_base: str, api_key: Secret, *, allow_insecure: bool = False
) -> RemoteBackend:
    """Build the backend the app and the CLI use with `--remote`.

    Args:
        api_base: `TENEX_API_BASE` (default `https://api.10ex.ai`).
        api_key: `TENEX_API_KEY`, as a `Secret`.
        allow_insecure: Allow plain HTTP to a non-loopback host.

    Returns:
        A `RemoteBackend` with the default timeouts, retries and resume policy.

    Raises:
        InvalidRequest: When the base URL breaks the transport policy, or the key is
            not a `tnx_` key.
    """
    value = api_key.reveal().strip()
    if not value.startswith("tnx_") or any(ch.isspace() for ch in value):
        raise InvalidRequest(
            "TENEX_API_KEY is not a 10ex key (expected tnx_<prefix>_<secret>)."
        )
    return RemoteBackend(api_base, Secret(value), allow_insecure=allow_insecure)
