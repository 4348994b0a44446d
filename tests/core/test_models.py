"""API models serialise with the wire names and RFC 3339 UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tenex_tui.core.events import StreamEvent
from tenex_tui.core.models import (
    Message,
    Page,
    Thread,
    ToolCall,
    clamp_limit,
    format_timestamp,
    parse_timestamp,
)

T0 = datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=UTC)


def test_timestamps_are_rfc3339_utc_with_z() -> None:
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    assert format_timestamp(paris) == "2026-01-15T09:30:00.123456Z"
    assert parse_timestamp("2026-01-15T09:30:00.123456Z") == T0


def test_thread_dumps_wire_field_names() -> None:
    thread = Thread(
        id="thr_1",
        workspace_id="ws_1",
        user_id="usr_1",
        title="Q3",
        created_at=T0,
        updated_at=T0,
    )
    wire = thread.model_dump(mode="json")
    assert wire["created_at"] == "2026-01-15T09:30:00.123456Z"
    assert wire["context"] == {"knowledge": [], "lead": None}
    assert set(wire) >= {
        "id",
        "workspace_id",
        "user_id",
        "title",
        "agent",
        "system_prompt",
        "context",
        "model",
        "pinned",
        "archived",
        "created_at",
        "updated_at",
        "last_message_at",
        "message_count",
    }
    assert Thread.model_validate(wire) == thread


def test_models_are_frozen() -> None:
    msg = Message(id="msg_1", thread_id="thr_1", role="user", created_at=T0)
    with pytest.raises(ValueError, match="frozen"):
        msg.content = "changed"  # type: ignore[misc]


def test_page_envelope_shape() -> None:
    page = Page[ToolCall](
        items=[ToolCall(id="c1", name="get_lead")], next_cursor=None, total=1
    )
    assert page.model_dump(mode="json") == {
        "items": [
            {
                "id": "c1",
                "name": "get_lead",
                "arguments": {},
                "status": "requested",
                "result": None,
                "error": None,
                "raw_arguments": None,
                "started_at": None,
                "completed_at": None,
            }
        ],
        "next_cursor": None,
        "total": 1,
    }


@pytest.mark.parametrize(
    ("asked", "given"), [(None, 50), (1, 1), (200, 200), (201, 200), (10_000, 200)]
)
def test_clamp_limit_defaults_and_caps(asked: int | None, given: int) -> None:
    assert clamp_limit(asked) == given


@pytest.mark.parametrize("bad", [0, -1])
def test_clamp_limit_rejects_non_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        clamp_limit(bad)


def test_stream_event_round_trips_through_the_wire() -> None:
    event = StreamEvent(
        id="msg_1.3",
        type="message.delta",
        message_id="msg_1",
        thread_id="thr_1",
        delta="Hi",
    )
    wire = event.to_wire()
    assert (
        wire["delta"] == "Hi"
        and wire["tool_call"] is None
        and wire["message_id"] == "msg_1"
    )
    assert StreamEvent.from_wire(wire) == event
    assert not event.terminal
    done = event.model_copy(update={"type": "message.completed"})
    assert done.terminal


def test_to_json_is_exactly_json_dumps_of_the_wire_dict() -> None:
    """The fast pydantic-core path must print byte-identical JSON to the obvious one."""
    import json
    from datetime import UTC, datetime

    from tenex_tui.core.events import StreamEvent
    from tenex_tui.core.models import Message, ToolCall, Usage

    message = Message(
        id="msg_1",
        thread_id="thr_1",
        role="assistant",
        content='héllo "x"\n\u2028</script>',
        created_at=datetime(2026, 1, 15, 9, 30, 0, 123456, tzinfo=UTC),
        usage=Usage(prompt_tokens=1),
    )
    events = [
        StreamEvent(
            id="msg_1.2",
            type="message.delta",
            message_id="msg_1",
            thread_id="thr_1",
            delta="w ✓",
        ),
        StreamEvent(
            id="msg_1.3",
            type="message.completed",
            message_id="msg_1",
            thread_id="thr_1",
            message=message,
            tool_call=ToolCall(id="c", name="n", arguments={"a": [1, "é", None, 2.5]}),
            usage=Usage(completion_tokens=3),
            extra={"ignored": True},
        ),
    ]
    for event in events:
        expected = json.dumps(
            event.to_wire(), separators=(",", ":"), ensure_ascii=False
        )
        assert event.to_json() == expected
