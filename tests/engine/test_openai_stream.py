"""SSE decoding and reply assembly for OpenAI-compatible streams, without a network."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tenex_tui.engine.llm import Finished, TextDelta, ToolCallProgress
from tenex_tui.engine.openai_stream import ReplyAssembler, SSEDecoder


def decode_in_pieces(body: bytes, cuts: list[int]) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    events: list[tuple[str, str]] = []
    start = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts}):
        events += decoder.feed(body[start:cut])
        start = cut
    events += decoder.feed(body[start:])
    return events + decoder.close()


BODY = (
    b": keep-alive comment\n\n"
    b'data: {"a": "caf\xc3\xa9"}\n\n'
    b"event: error\r\ndata: line one\r\ndata: line two\r\n\r\n"
    b"id: 7\nretry: 100\n\n"
    b"data:no-space\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("", '{"a": "café"}'),
    ("error", "line one\nline two"),
    ("", "no-space"),
    ("", "[DONE]"),
]


def test_events_comments_crlf_and_multiline_data_decode_as_the_spec_says() -> None:
    assert decode_in_pieces(BODY, []) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(BODY)), max_size=12))
def test_where_the_network_splits_the_bytes_never_matters(cuts: list[int]) -> None:
    # Splits land inside UTF-8 sequences, inside "\r\n" and inside "data:" too.
    assert decode_in_pieces(BODY, cuts) == EXPECTED


def test_a_last_event_without_its_blank_line_is_still_delivered() -> None:
    assert decode_in_pieces(b'data: {"x": 1}', []) == [("", '{"x": 1}')]


def test_a_long_line_in_many_pieces_is_joined_once() -> None:
    decoder = SSEDecoder()
    piece = b"x" * 65536
    assert decoder.feed(b"data: ") == []
    for _ in range(32):
        assert decoder.feed(piece) == []
    ((_, data),) = decoder.feed(b"\n\n")
    assert len(data) == 32 * 65536


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert decode_in_pieces(b"data: caf\xe9!\n\n", []) == [("", "caf\ufffd!")]


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def test_the_assembler_yields_text_and_progress_then_a_finished_summary() -> None:
    reply = ReplyAssembler()
    events = []
    for chunk in [
        delta(role="assistant"),
        delta(content="Hi"),
        delta(
            tool_calls=[
                {"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}}
            ]
        ),
        delta(
            tool_calls=[
                {"index": 0, "id": "c", "function": {"name": "f", "arguments": ": 1}"}}
            ]
        ),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    ]:
        events += list(reply.feed(chunk))

    assert events == [
        TextDelta("Hi"),
        ToolCallProgress(index=0, id="c", name="f", arguments_so_far='{"a"'),
        ToolCallProgress(index=0, id="c", name="f", arguments_so_far='{"a": 1}'),
    ]
    end = reply.finished()
    assert isinstance(end, Finished)
    assert end.finish_reason == "tool_calls"
    assert end.usage is not None and (
        end.usage.prompt_tokens,
        end.usage.completion_tokens,
    ) == (3, 2)
    assert end.tool_calls[0].arguments == {"a": 1}


def test_arguments_sent_as_an_object_are_kept_as_json_text() -> None:
    reply = ReplyAssembler()
    list(
        reply.feed(
            delta(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "c",
                        "function": {"name": "f", "arguments": {"k": [1]}},
                    }
                ]
            )
        )
    )

    (call,) = reply.finished().tool_calls
    assert json.loads(call.arguments_json) == {"k": [1]}
    assert call.arguments == {"k": [1]}


def test_odd_usage_values_are_dropped_not_trusted() -> None:
    reply = ReplyAssembler()
    list(reply.feed({"usage": {"prompt_tokens": True, "completion_tokens": "7"}}))

    usage = reply.finished().usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (None, None)
