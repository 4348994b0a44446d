"""The OpenAI-compatible adapter, through the real SDK, against the loopback fake server.

Replies, tool-call assembly and tolerance of odd servers. Failures (drops, stalls,
status errors, retries, cancel) are in `test_openai_adapter_failures.py`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tenex_tui.core.errors import ModelNotConfigured
from tenex_tui.core.models import Usage
from tenex_tui.core.secrets import Secret
from tenex_tui.engine.llm import (
    ChatTurn,
    Finished,
    LLMEvent,
    TextDelta,
    ToolCallProgress,
    ToolCallRequest,
    ToolSpec,
)
from tenex_tui.engine.openai_adapter import OpenAICompatibleAdapter
from tests.support.fake_llm import (
    Chunk,
    FakeLLMServer,
    Script,
    function_call_fragment,
    tool_fragment,
)

MakeAdapter = Callable[..., OpenAICompatibleAdapter]
HELLO = [ChatTurn("user", "hello")]


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer() as server:
        yield server


@pytest.fixture
async def make_adapter(llm: FakeLLMServer) -> AsyncIterator[MakeAdapter]:
    made: list[OpenAICompatibleAdapter] = []

    def make(**options: Any) -> OpenAICompatibleAdapter:
        options.setdefault("base_url", llm.base_url)
        options.setdefault("api_key", None)
        adapter = OpenAICompatibleAdapter(**options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


async def collect(
    adapter: OpenAICompatibleAdapter,
    turns: Sequence[ChatTurn] = HELLO,
    *,
    model: str = "fake-model",
    tools: Sequence[ToolSpec] = (),
) -> list[LLMEvent]:
    return [event async for event in adapter.stream(turns, model=model, tools=tools)]


def texts(events: Sequence[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finished(events: Sequence[LLMEvent]) -> Finished:
    ends = [e for e in events if isinstance(e, Finished)]
    assert len(ends) == 1, events
    assert events[-1] is ends[0]
    return ends[0]


# ---------------------------------------------------------------------- text replies


async def test_text_reply_streams_deltas_then_one_finished_with_usage(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("The sky is blue.", prompt_tokens=12, completion_tokens=4))

    events = await collect(make_adapter())

    # Chunks that arrive together are merged into one delta (test_stream_throughput).
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == "The sky is blue."
    assert 1 <= len(deltas) <= 4
    end = finished(events)
    assert end.finish_reason == "stop"
    assert end.usage == Usage(prompt_tokens=12, completion_tokens=4)
    assert end.tool_calls == ()


async def test_request_maps_turns_tools_and_asks_for_usage(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    turns = [
        ChatTurn("system", "Be brief."),
        ChatTurn("user", "Weather in Paris?"),
        ChatTurn(
            "assistant",
            "",
            tool_calls=(ToolCallRequest("call_1", "get_weather", '{"city":"Paris"}'),),
        ),
        ChatTurn("tool", '{"temp": 21}', tool_call_id="call_1"),
    ]
    tools = [
        ToolSpec(
            "get_weather",
            "Weather for a city",
            {"type": "object", "properties": {"city": {"type": "string"}}},
        ),
        ToolSpec("now", "The time"),
    ]

    await collect(make_adapter(), turns, model="gpt-x", tools=tools)

    body = llm.chat_requests[0].body
    assert body["model"] == "gpt-x"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city":"Paris"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "now",
                "description": "The time",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]


async def test_tools_are_omitted_when_none_are_offered(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    await collect(make_adapter())
    assert "tools" not in llm.chat_requests[0].body


async def test_server_that_ignores_include_usage_finishes_without_usage(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("fine", usage="never"))

    events = await collect(make_adapter())

    assert llm.chat_requests[0].body["stream_options"] == {"include_usage": True}
    assert texts(events) == "fine"
    assert finished(events).usage is None


async def test_include_usage_off_sends_no_stream_options(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    events = await collect(make_adapter(include_usage=False))

    assert "stream_options" not in llm.chat_requests[0].body
    assert finished(events).usage is None


async def test_refused_stream_options_is_retried_once_without_and_remembered(
    make_adapter: MakeAdapter,
) -> None:
    async with FakeLLMServer(reject_stream_options=True) as server:
        adapter = make_adapter(base_url=server.base_url)

        first = await collect(adapter, [ChatTurn("user", "one")])
        second = await collect(adapter, [ChatTurn("user", "two")])

        assert (texts(first), texts(second)) == ("one", "two")
        sent = [("stream_options" in r.body, r.status) for r in server.chat_requests]
        assert sent == [(True, 400), (False, 200), (False, 200)]


async def test_the_request_carries_the_key_and_extra_headers(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    await collect(
        make_adapter(
            api_key=Secret("sk-local-123456789"), extra_headers={"X-Team": "blue"}
        )
    )
    await collect(make_adapter(api_key=None))

    first, second = llm.chat_requests
    assert first.headers["authorization"] == "Bearer sk-local-123456789"
    assert first.headers["x-team"] == "blue"
    assert second.headers["authorization"] == "Bearer not-needed"


# ---------------------------------------------------------------------- tool calls


async def test_tool_call_arguments_over_seven_fragments_assemble_after_finish(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    pieces = ['{"ci', 'ty": "Pa', "ris", '", "un', 'its": ', '"metric"', "}"]
    fragments = [tool_fragment(0, id="call_w", name="get_weather", arguments=pieces[0])]
    fragments += [tool_fragment(0, arguments=p) for p in pieces[1:]]
    llm.enqueue(Script.text(*fragments, finish_reason="tool_calls"))

    events = await collect(make_adapter())

    progress = [e for e in events if isinstance(e, ToolCallProgress)]
    assert len(progress) == 7
    assert {(p.index, p.id, p.name) for p in progress} == {(0, "call_w", "get_weather")}
    assert [p.arguments_so_far for p in progress][-1] == "".join(pieces)
    assert [len(p.arguments_so_far) for p in progress] == sorted(
        len(p.arguments_so_far) for p in progress
    )
    end = finished(events)
    assert end.finish_reason == "tool_calls"
    (call,) = end.tool_calls
    assert (call.id, call.name) == ("call_w", "get_weather")
    assert call.arguments == {"city": "Paris", "units": "metric"}
    assert call.arguments_json == "".join(pieces)
    assert call.parse_error is None


async def test_repeated_id_and_name_in_every_fragment_are_set_once(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            *(
                tool_fragment(0, id="call_r", name="get_weather", arguments=part)
                for part in ['{"city"', ': "Oslo"', "}"]
            ),
            finish_reason="tool_calls",
        )
    )

    events = await collect(make_adapter())

    (call,) = finished(events).tool_calls
    assert call.name == "get_weather"
    assert call.id == "call_r"
    assert call.arguments == {"city": "Oslo"}
    assert all(
        p.name == "get_weather" for p in events if isinstance(p, ToolCallProgress)
    )


async def test_two_parallel_tool_calls_assemble_by_index(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            tool_fragment(0, id="call_a", name="get_weather", arguments=""),
            tool_fragment(1, id="call_b", name="get_time", arguments='{"tz":'),
            tool_fragment(0, arguments='{"city":'),
            tool_fragment(1, arguments='"UTC"}'),
            tool_fragment(0, arguments='"Rome"}'),
            finish_reason="tool_calls",
        )
    )

    events = await collect(make_adapter())

    calls = finished(events).tool_calls
    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "call_a", "get_weather", {"city": "Rome"}),
        (1, "call_b", "get_time", {"tz": "UTC"}),
    ]
    first_seen = [e.index for e in events if isinstance(e, ToolCallProgress)][:2]
    assert first_seen == [0, 1]


@pytest.mark.parametrize(
    ("arguments", "parsed", "error_words"),
    [
        ('{"city": "Par', None, "not valid JSON"),
        ("[1, 2]", None, "JSON list, not an object"),
        ('"Paris"', None, "JSON str, not an object"),
        ("", {}, None),
        ('{"nested": {"a": [1, null]}}', {"nested": {"a": [1, None]}}, None),
    ],
)
async def test_tool_arguments_are_parsed_or_explained(
    llm: FakeLLMServer,
    make_adapter: MakeAdapter,
    arguments: str,
    parsed: dict[str, Any] | None,
    error_words: str | None,
) -> None:
    llm.enqueue(
        Script.text(
            tool_fragment(0, id="call_x", name="lookup", arguments=arguments),
            finish_reason="tool_calls",
        )
    )

    (call,) = finished(await collect(make_adapter())).tool_calls

    assert call.arguments == parsed
    assert call.arguments_json == arguments
    if error_words is None:
        assert call.parse_error is None
    else:
        assert call.parse_error is not None and error_words in call.parse_error


async def test_legacy_function_call_becomes_tool_call_zero(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            function_call_fragment(name="get_weather", arguments='{"city": '),
            function_call_fragment(arguments='"Lima"}'),
            finish_reason="function_call",
        )
    )

    end = finished(await collect(make_adapter()))

    assert end.finish_reason == "tool_calls"
    (call,) = end.tool_calls
    assert (call.index, call.id, call.name) == (0, "call_0", "get_weather")
    assert call.arguments == {"city": "Lima"}


async def test_legacy_function_call_beside_tool_calls_is_not_counted_twice(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    both = {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_t",
                "type": "function",
                "function": {"name": "f", "arguments": '{"a": 1}'},
            }
        ],
        "function_call": {"name": "f", "arguments": '{"a": 1}'},
    }
    llm.enqueue(Script.text(Chunk(delta=both), finish_reason="tool_calls"))

    (call,) = finished(await collect(make_adapter())).tool_calls

    assert call.arguments_json == '{"a": 1}'
    assert call.id == "call_t"


async def test_stop_beside_finished_tool_calls_means_tool_calls(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.text(tool_fragment(0, id="c", name="f", arguments="{}")))

    end = finished(await collect(make_adapter()))

    assert end.finish_reason == "tool_calls"
    assert [c.name for c in end.tool_calls] == ["f"]


async def test_a_missing_call_id_is_generated_from_the_index(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            tool_fragment(0, name="first", arguments="{}"),
            tool_fragment(1, name="second", arguments="{}"),
            finish_reason="tool_calls",
        )
    )

    calls = finished(await collect(make_adapter())).tool_calls

    assert [c.id for c in calls] == ["call_0", "call_1"]


async def test_tool_calls_without_index_are_told_apart_by_id(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }

    llm.enqueue(
        Script.text(
            Chunk(
                delta={
                    "tool_calls": [call("c1", "a", '{"x": 1}'), call("c2", "b", "{}")]
                }
            ),
            finish_reason="tool_calls",
        )
    )

    calls = finished(await collect(make_adapter())).tool_calls

    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "c1", "a", {"x": 1}),
        (1, "c2", "b", {}),
    ]


# ---------------------------------------------------------------------- odd servers


@pytest.mark.parametrize("role_chunk", ["empty", "no_content", "null_content", "none"])
async def test_any_role_chunk_shape_is_tolerated(
    llm: FakeLLMServer, make_adapter: MakeAdapter, role_chunk: Any
) -> None:
    llm.enqueue(Script.reply("still here", role_chunk=role_chunk))

    events = await collect(make_adapter())

    assert texts(events) == "still here"
    assert all(e.text for e in events if isinstance(e, TextDelta))
    assert finished(events).finish_reason == "stop"


async def test_chunks_without_choices_null_content_and_unknown_fields_are_ignored(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            Chunk(
                body={
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "x_gateway": {"queue": 3},
                }
            ),
            Chunk(delta={"content": None, "reasoning_content": "hmm", "x_extra": True}),
            Chunk(
                body={
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": "A"},
                            "logprobs": None,
                            "x": 1,
                        }
                    ]
                }
            ),
            Chunk(
                body={"choices": [{"index": 1, "delta": {"content": "other choice"}}]}
            ),
            Chunk(body={"choices": "not a list"}),
            "B",
        )
    )

    events = await collect(make_adapter())

    assert texts(events) == "AB"
    finished(events)


async def test_finish_reason_on_the_last_content_chunk(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            "cut ",
            Chunk(delta={"content": "short"}, finish_reason="length"),
            finish_reason=None,
        )
    )

    events = await collect(make_adapter())

    assert texts(events) == "cut short"
    assert finished(events).finish_reason == "length"


async def test_done_marker_without_finish_reason_ends_the_reply(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(Script.reply("old server", finish_reason=None))

    events = await collect(make_adapter())

    assert finished(events).finish_reason == "stop"


async def test_a_drop_after_the_finish_reason_still_finishes(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    # role, "all ", "done", finish: the drop hits before the usage chunk and [DONE].
    llm.enqueue(Script.reply("all done", drop_after=4))

    events = await collect(make_adapter())

    assert texts(events) == "all done"
    assert finished(events).usage is None


async def test_a_server_that_ignores_stream_true_is_read_as_one_reply(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.enqueue(
        Script.text(
            "whole ",
            "answer",
            tool_fragment(0, id="call_j", name="f", arguments='{"k": 2}'),
            ignore_stream=True,
            finish_reason="tool_calls",
        )
    )

    events = await collect(make_adapter())

    assert texts(events) == "whole answer"
    end = finished(events)
    assert end.finish_reason == "tool_calls"
    assert end.usage is not None
    assert [(c.id, c.arguments) for c in end.tool_calls] == [("call_j", {"k": 2})]


# ---------------------------------------------------------------------- T19 hostile chunks


async def test_an_invalid_json_line_is_skipped_and_logged_truncated(
    llm: FakeLLMServer, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    junk = b"data: {not json " + b"x" * 5000 + b"\n\n"
    llm.enqueue(Script.text("before ", Chunk(raw=junk), "after"))

    with caplog.at_level(logging.WARNING, logger="tenex_tui.engine.openai_adapter"):
        events = await collect(make_adapter())

    assert texts(events) == "before after"
    assert finished(events).finish_reason == "stop"
    (record,) = [r for r in caplog.records if "not JSON" in r.getMessage()]
    assert "{not json" in record.getMessage()
    assert len(record.getMessage()) < 600


async def test_nul_bytes_and_invalid_utf8_do_not_break_the_reply(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    raw_nul = b'data: {"choices":[{"index":0,"delta":{"content":"raw\x00nul "}}]}\n\n'
    bad_utf8 = b'data: {"choices":[{"index":0,"delta":{"content":"caf\xe9 "}}]}\n\n'
    llm.enqueue(
        Script.text("esc\x00aped ", Chunk(raw=raw_nul), Chunk(raw=bad_utf8), "end")
    )

    events = await collect(make_adapter())

    text = texts(events)
    assert text == "esc\x00aped raw\x00nul caf\ufffd end"
    text.encode("utf-8")  # valid UTF-8 all the way
    finished(events)


async def test_a_two_mebibyte_delta_arrives_whole(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    big = "é" * (1024 * 1024)  # 2 MiB of UTF-8
    llm.enqueue(Script.text("<", big, ">"))

    events = await collect(make_adapter())

    assert texts(events) == "<" + big + ">"


async def test_one_json_object_per_data_line_without_blank_lines(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    def line(text: str) -> bytes:
        return (
            b"data: "
            + json.dumps(
                {"choices": [{"index": 0, "delta": {"content": text}}]}
            ).encode()
            + b"\n"
        )

    llm.enqueue(
        Script.text(Chunk(raw=line("packed ") + line("lines")), finish_reason="stop")
    )

    assert texts(await collect(make_adapter())) == "packed lines"


# ---------------------------------------------------------------------- models and lifecycle


async def test_list_models_returns_ids_in_server_order(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    llm.models = ["zeta", "alpha", "mid"]

    assert await make_adapter().list_models() == ["zeta", "alpha", "mid"]


async def test_an_empty_model_is_not_configured(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(default_model=None)

    assert adapter.default_model is None
    with pytest.raises(ModelNotConfigured):
        await collect(adapter, model="")


async def test_default_model_is_what_was_configured(make_adapter: MakeAdapter) -> None:
    assert make_adapter(default_model="llama3.2").default_model == "llama3.2"


async def test_a_tool_turn_without_its_call_id_is_refused(
    make_adapter: MakeAdapter,
) -> None:
    with pytest.raises(ValueError, match="tool_call_id"):
        await collect(make_adapter(), [ChatTurn("tool", "result")])


async def test_concurrent_warm_builds_one_client_and_aclose_allows_rewarming(
    llm: FakeLLMServer, make_adapter: MakeAdapter
) -> None:
    import asyncio

    adapter = make_adapter()
    await asyncio.gather(adapter.warm(), adapter.warm(), adapter.warm())
    client = adapter._client
    assert client is not None
    await adapter.warm()
    assert adapter._client is client

    await adapter.aclose()
    assert adapter._client is None
    assert texts(await collect(adapter)) == "hello"


def test_repr_never_shows_the_key() -> None:
    adapter = OpenAICompatibleAdapter(
        base_url="http://127.0.0.1:9/v1", api_key=Secret("tnx_test_CANARYSECRET123")
    )

    assert "CANARYSECRET" not in repr(adapter)


def test_importing_the_adapter_does_not_import_the_sdk(tmp_path: Path) -> None:
    code = (
        "import sys, json, tenex_tui.engine.openai_adapter as m;"
        "m.OpenAICompatibleAdapter(base_url=None, api_key=None);"
        "print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'openai', 'httpx2', 'httpx', 'anyio'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"TENEX_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )

    assert json.loads(out.stdout) == []
