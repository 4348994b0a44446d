"""Leads: parsing CSV and JSON exports, validating records, naming, and the store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenex_tui.core.errors import InvalidCursor, InvalidRequest, NotFound
from tenex_tui.engine.engine import LocalEngine
from tenex_tui.engine.leads import (
    MAX_FIELDS,
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    guess_name,
    parse_leads,
    validate_record,
    validate_records,
)

CSV = (
    "name,company,email\nDana Smith,Acme,dana@acme.test\n\nLee,Globex,lee@globex.test\n"
)


# -- parsing ----------------------------------------------------------------------------


def test_a_csv_header_names_the_fields() -> None:
    parsed = parse_leads(CSV.encode(), filename="leads.csv")
    assert parsed.records == [
        {"name": "Dana Smith", "company": "Acme", "email": "dana@acme.test"},
        {"name": "Lee", "company": "Globex", "email": "lee@globex.test"},
    ]
    assert parsed.warnings == []


def test_csv_dialects_bom_and_short_rows() -> None:
    data = '\ufeffName;Company;Notes\nDana;Acme;"likes; semicolons"\nLee;Globex\n'
    parsed = parse_leads(data.encode("utf-8"), filename="export.csv")
    assert parsed.records == [
        {"Name": "Dana", "Company": "Acme", "Notes": "likes; semicolons"},
        {"Name": "Lee", "Company": "Globex", "Notes": ""},
    ]


def test_windows_1252_is_read_with_a_warning() -> None:
    data = "name,city\nJosé,Besançon\n".encode("cp1252")
    parsed = parse_leads(data, filename="old.csv")
    assert parsed.records == [{"name": "José", "city": "Besançon"}]
    assert parsed.warnings == ["old.csv is not UTF-8; it was read as Windows-1252."]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", "no header row"),
        ("name,email,name\nx,y,z\n", "'name' appears twice"),
        ("name,,email\nx,y,z\n", "column 2 has no name"),
        ("name,email\na,b,c,d\n", "line 2: 4 cells, but the header names 2"),
        ("name,email\n\n\n", "no leads"),
    ],
)
def test_bad_csv_files_are_refused_with_the_reason(data: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_leads(data.encode(), filename="bad.csv")


@pytest.mark.parametrize(
    "text",
    [
        '[{"name": "Dana"}, {"name": "Lee", "score": 7}]',
        '{"leads": [{"name": "Dana"}, {"name": "Lee", "score": 7}]}',
        '{"name": "Dana"}\n\n{"name": "Lee", "score": 7}\n',
    ],
)
def test_json_arrays_wrappers_and_json_lines(text: str) -> None:
    parsed = parse_leads(text.encode(), filename="leads.json")
    assert parsed.records == [{"name": "Dana"}, {"name": "Lee", "score": 7}]


def test_a_single_object_is_one_lead_and_json_is_detected_by_content() -> None:
    assert parse_leads(b'{"name": "Dana"}', filename="x.csv").records == [
        {"name": "Dana"}
    ]


def test_invalid_json_names_the_position() -> None:
    with pytest.raises(InvalidRequest, match=r"not valid JSON \(line 1, column"):
        parse_leads(b'[{"name": "Dana",]', filename="leads.json")
    with pytest.raises(InvalidRequest, match="neither a lead nor a list"):
        parse_leads(b'"just text"', filename="leads.json")


# -- validation -------------------------------------------------------------------------


def test_keys_are_trimmed_and_values_kept_verbatim() -> None:
    record = validate_record({" name ": "Dana", "tags": ["a", {"b": 1}], "x": None})
    assert record == {"name": "Dana", "tags": ["a", {"b": 1}], "x": None}
    assert list(record) == ["name", "tags", "x"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("Dana", "must be an object"),
        ({}, "no values"),
        ({"name": "  ", "x": None}, "no values"),
        ({" ": "x"}, "has no name"),
        ({"a": 1, " a": 2}, "'a' appears twice"),
        ({f"f{i}": i for i in range(MAX_FIELDS + 1)}, f"at most {MAX_FIELDS} fields"),
        ({"note": "x" * (MAX_VALUE_CHARS + 1)}, "longer than 10,000"),
        ({"deep": [[[[["x"]]]]]}, "nest more than 4"),
        ({"score": float("nan")}, "finite"),
        ({"k" * 101: 1}, "longer than 100 characters"),
        ({f"f{i}": "x" * 9000 for i in range(8)}, "64,000 characters"),
    ],
)
def test_records_breaking_a_rule_are_refused_by_position(
    record: Any, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        validate_records([{"name": "ok"}, record])
    assert caught.value.message.startswith("record 2")


def test_imports_are_capped() -> None:
    with pytest.raises(InvalidRequest, match="There are no leads"):
        validate_records([])
    with pytest.raises(InvalidRequest, match="At most 10,000"):
        validate_records([{"name": "x"}] * 10_001)


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"email": "d@acme.test", "Full Name": " Dana   Smith ", "company": "Acme"}, "Dana Smith"),
        ({"First_Name": "Dana", "last-name": "Smith", "company": "Acme"}, "Dana Smith"),
        ({"email": "d@acme.test", "Company Name": "Acme"}, "Acme"),
        ({"score": 3, "E-mail": "d@acme.test"}, "d@acme.test"),
        ({"score": 3, "city": "Paris"}, "3"),
        ({"flag": True, "tags": ["x"]}, "Unnamed lead"),
    ],
)  # fmt: skip
def test_the_name_is_guessed_from_name_company_or_email(
    fields: dict[str, Any], name: str
) -> None:
    assert guess_name(fields) == name


def test_long_names_are_cut() -> None:
    name = guess_name({"name": "x" * 500})
    assert len(name) == MAX_NAME_CHARS and name.endswith("…")


# -- the store ----------------------------------------------------------------------------


async def test_import_returns_one_lead_per_record_and_never_duplicates(
    engine: LocalEngine,
) -> None:
    records = parse_leads(CSV.encode(), filename="leads.csv").records
    first = await engine.import_leads(records)
    assert [lead.name for lead in first] == ["Dana Smith", "Lee"]
    assert all(lead.id.startswith("lead_") for lead in first)
    again = await engine.import_leads([records[1], {"name": "New"}, records[1]])
    assert again[0] == first[1] and again[2] == first[1]
    assert again[1].name == "New" and again[1].id not in {f.id for f in first}
    assert (await engine.list_leads()).total == 3
    stored = await engine.get_lead(first[0].id)
    assert stored.fields == records[0]
    assert list(stored.fields) == ["name", "company", "email"]


async def test_leads_list_newest_first_with_cursor_and_name_filter(
    engine: LocalEngine,
) -> None:
    leads = await engine.import_leads([{"name": f"Lead {i}"} for i in range(5)])
    page = await engine.list_leads(limit=3)
    assert [lead.id for lead in page.items] == [leads[4].id, leads[3].id, leads[2].id]
    rest = await engine.list_leads(limit=3, cursor=page.next_cursor)
    assert [lead.id for lead in rest.items] == [leads[1].id, leads[0].id]
    assert rest.next_cursor is None and rest.total == 5
    assert [lead.id for lead in (await engine.list_leads(q="lead 2")).items] == [
        leads[2].id
    ]
    with pytest.raises(InvalidCursor):
        await engine.list_leads(cursor="forged.cursor")


async def test_leads_belong_to_the_workspace(engine: LocalEngine) -> None:
    (lead,) = await engine.import_leads([{"name": "Dana", "deal": json.dumps([1])}])
    colleague = engine.for_scope("ws_local", "usr_other")
    outsider = engine.for_scope("ws_other", "usr_local")
    assert (await colleague.get_lead(lead.id)).name == "Dana"
    with pytest.raises(NotFound) as foreign:
        await outsider.get_lead(lead.id)
    with pytest.raises(NotFound) as missing:
        await outsider.get_lead("lead_missing")
    assert foreign.value.to_wire() == missing.value.to_wire()
    assert (await outsider.list_leads()).items == []
    # The same record in another workspace is another lead.
    await engine.ensure_scope("ws_other", "usr_local")
    (theirs,) = await outsider.import_leads([{"name": "Dana", "deal": json.dumps([1])}])
    assert theirs.id != lead.id


async def test_invalid_records_store_nothing(engine: LocalEngine) -> None:
    with pytest.raises(InvalidRequest, match="record 2"):
        await engine.import_leads([{"name": "ok"}, {"bad": float("inf")}])
    assert (await engine.list_leads()).total == 0
