"""Lead records: parsing CSV and JSON exports, validating records, naming leads.

A lead is one record of a CRM export, kept verbatim as its fields and given to the
model as data (never as instructions). What this module decides:

- **Parsing** (`parse_leads`): CSV with a header row (the header names the fields;
  the delimiter is sniffed among `,` `;` tab and `|`), a JSON array of objects, an
  object holding such an array (`{"leads": [...]}`, `{"records": [...]}`, `{"data":
  [...]}`), or JSON Lines. Text is UTF-8 (a BOM is fine), else Windows-1252, which is
  what spreadsheet programs write. Blank rows are skipped.
- **Validation** (`validate_record`): a record is a non-empty object of at most
  `MAX_FIELDS` fields; keys are trimmed, non-empty and unique; values are strings,
  numbers, booleans, null, or lists and objects of those nested at most
  `MAX_DEPTH` deep; strings are at most `MAX_VALUE_CHARS` and the whole record at
  most `MAX_RECORD_CHARS` once serialised. A refusal names the record (its row).
- **The name** (`guess_name`): the first non-empty value of a name-like column
  (`name`, `full name`, `contact`…), else first plus last name, else the company,
  else the email, else the first non-empty string value.

Pure functions only: the CLI reads the file (through the attachment loader's safe
snapshot) and the store writes the rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenex_tui.core.errors import InvalidRequest
from tenex_tui.core.payloads import MAX_LEADS_PER_IMPORT

MAX_LEADS_FILE_BYTES = 20 * 1024 * 1024
"""Largest lead file read."""
MAX_FIELDS = 100
"""Fields of one record."""
MAX_KEY_CHARS = 100
"""Characters of a field name."""
MAX_VALUE_CHARS = 10_000
"""Characters of one string value."""
MAX_RECORD_CHARS = 64_000
"""Characters of one record serialised as JSON."""
MAX_DEPTH = 4
"""Nesting of lists and objects inside a record."""
MAX_NAME_CHARS = 200
"""Characters of a lead's display name (longer names are cut with `…`)."""

# Compared after `_normal_key`: lower case, `_` and `-` read as spaces.
_NAME_KEYS = ("name", "full name", "fullname", "contact", "contact name", "person")
_FIRST_KEYS = ("first name", "firstname", "given name")
_LAST_KEYS = ("last name", "lastname", "surname", "family name")
_COMPANY_KEYS = (
    "company",
    "company name",
    "organization",
    "organisation",
    "account",
    "account name",
    "business",
)
_EMAIL_KEYS = ("email", "e mail", "email address", "mail", "work email")
_ARRAY_KEYS = ("leads", "records", "data", "items", "rows")


@dataclass(frozen=True)
class ParsedLeads:
    """The records of a lead file, and what the user should be told about it."""

    records: list[dict[str, Any]]
    warnings: list[str]


def _normal_key(key: str) -> str:
    return " ".join(key.replace("_", " ").replace("-", " ").casefold().split())


def _label(index: int) -> str:
    return f"record {index + 1}"


def _check_value(value: Any, where: str, depth: int) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{where}: numbers must be finite.")
        return
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise InvalidRequest(
                f"{where}: a value is longer than {MAX_VALUE_CHARS:,} characters."
            )
        return
    if depth >= MAX_DEPTH:
        raise InvalidRequest(f"{where}: values nest more than {MAX_DEPTH} deep.")
    if isinstance(value, list):
        for item in value:
            _check_value(item, where, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(f"{where}: keys must be strings.")
            _check_value(item, where, depth + 1)
        return
    raise InvalidRequest(
        f"{where}: {type(value).__name__} values cannot be stored in a lead."
    )


def validate_record(record: object, index: int = 0) -> dict[str, Any]:
    """Check one record and return it with trimmed keys.

    Args:
        record: The candidate record (a mapping of field name to value).
        index: Its position, to name it in errors.

    Returns:
        A new dict with the same values in the same order.

    Raises:
        InvalidRequest: When the record is not an object, is empty, or breaks a cap.
    """
    where = _label(index)
    if not isinstance(record, Mapping):
        raise InvalidRequest(f"{where}: a lead must be an object of fields.")
    if len(record) > MAX_FIELDS:
        raise InvalidRequest(f"{where}: a lead has at most {MAX_FIELDS} fields.")
    clean: dict[str, Any] = {}
    for raw_key, value in record.items():
        if not isinstance(raw_key, str):
            raise InvalidRequest(f"{where}: field names must be text.")
        key = raw_key.strip()
        if not key:
            raise InvalidRequest(f"{where}: a field has no name.")
        if len(key) > MAX_KEY_CHARS:
            raise InvalidRequest(
                f"{where}: a field name is longer than {MAX_KEY_CHARS} characters."
            )
        if key in clean:
            raise InvalidRequest(f"{where}: the field {key!r} appears twice.")
        _check_value(value, f"{where}, field {key!r}", 0)
        clean[key] = value
    if not any(_present(v) for v in clean.values()):
        raise InvalidRequest(f"{where}: the lead has no values.")
    if len(canonical_json(clean)) > MAX_RECORD_CHARS:
        raise InvalidRequest(
            f"{where}: a lead is at most {MAX_RECORD_CHARS:,} characters as JSON."
        )
    return clean


def validate_records(records: Sequence[object]) -> list[dict[str, Any]]:
    """Check every record of an import.

    Raises:
        InvalidRequest: When there are none, too many, or one is invalid.
    """
    if not records:
        raise InvalidRequest("There are no leads to import.")
    if len(records) > MAX_LEADS_PER_IMPORT:
        raise InvalidRequest(
            f"At most {MAX_LEADS_PER_IMPORT:,} leads can be imported at once; "
            f"there are {len(records):,}."
        )
    return [validate_record(record, index) for index, record in enumerate(records)]


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


def canonical_json(record: Mapping[str, Any]) -> str:
    """The record as compact JSON with sorted keys (what its hash is taken of)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: Mapping[str, Any]) -> str:
    """A digest that is the same for two records with the same fields and values."""
    return hashlib.sha256(
        canonical_json(record).encode("utf-8", "surrogatepass")
    ).hexdigest()


def _text(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        return ""
    return str(value)


def _first(fields: Mapping[str, Any], names: Sequence[str]) -> str:
    by_key = {_normal_key(k): v for k, v in fields.items()}
    for name in names:
        text = _text(by_key.get(name))
        if text:
            return text
    return ""


def guess_name(fields: Mapping[str, Any]) -> str:
    """A display name for a lead (see the module docstring for the order).

    Returns:
        At most `MAX_NAME_CHARS` characters; `Unnamed lead` when nothing fits.
    """
    name = _first(fields, _NAME_KEYS)
    if not name:
        name = " ".join(
            part
            for part in (_first(fields, _FIRST_KEYS), _first(fields, _LAST_KEYS))
            if part
        )
    name = (
        name
        or _first(fields, _COMPANY_KEYS)
        or _first(fields, _EMAIL_KEYS)
        or next((_text(v) for v in fields.values() if _text(v)), "")
    )
    if not name:
        return "Unnamed lead"
    if len(name) > MAX_NAME_CHARS:
        return name[: MAX_NAME_CHARS - 1] + "…"
    return name


# -- parsing files -------------------------------------------------------------------


def _decode(data: bytes, filename: str, warnings: list[str]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise InvalidRequest(
            f"{filename} is neither UTF-8 nor Windows-1252 text."
        ) from None
    warnings.append(f"{filename} is not UTF-8; it was read as Windows-1252.")
    return text


def _parse_csv(text: str, filename: str) -> list[dict[str, Any]]:
    sample = text[:65536]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            sample, delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InvalidRequest(f"{filename} has no header row.")
        names = [cell.strip() for cell in header]
        for position, name in enumerate(names, start=1):
            if not name:
                raise InvalidRequest(f"{filename}: column {position} has no name.")
            if names.index(name) != position - 1:
                raise InvalidRequest(f"{filename}: the column {name!r} appears twice.")
        records: list[dict[str, Any]] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(names):
                raise InvalidRequest(
                    f"{filename}, line {reader.line_num}: {len(row)} cells, but the "
                    f"header names {len(names)} columns."
                )
            if len(records) >= MAX_LEADS_PER_IMPORT:
                raise InvalidRequest(
                    f"{filename} has more than {MAX_LEADS_PER_IMPORT:,} leads."
                )
            cells = [*row, *([""] * (len(names) - len(row)))]
            records.append(dict(zip(names, cells, strict=True)))
    except csv.Error as exc:
        raise InvalidRequest(
            f"{filename}, line {reader.line_num}: not valid CSV ({exc})."
        ) from None
    return records


def _json_records(value: Any, filename: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in _ARRAY_KEYS:
            inner = value.get(key)
            if isinstance(inner, list):
                return inner
        return [value]
    raise InvalidRequest(f"{filename} holds neither a lead nor a list of leads.")


def _parse_json(text: str, filename: str) -> list[Any]:
    try:
        return _json_records(json.loads(text), filename)
    except json.JSONDecodeError as first_error:
        # Not one JSON document: perhaps JSON Lines (one object per line).
        records: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise InvalidRequest(
                    f"{filename} is not valid JSON (line {first_error.lineno}, "
                    f"column {first_error.colno}: {first_error.msg})."
                ) from None
            if len(records) > MAX_LEADS_PER_IMPORT:
                break  # validate_records refuses the import, naming the cap
        return records


def parse_leads(data: bytes, *, filename: str) -> ParsedLeads:
    """Parse a lead file into validated records.

    Args:
        data: The file's bytes.
        filename: Its name: `.json`, `.jsonl` and `.ndjson` are read as JSON,
            anything else as CSV (a CSV whose first character is `[` or `{` is
            read as JSON too).

    Returns:
        The records, in file order, and warnings for the user.

    Raises:
        InvalidRequest: When the file cannot be read as leads, or a record breaks a
            rule (the message names the record).
    """
    if len(data) > MAX_LEADS_FILE_BYTES:
        raise InvalidRequest(
            f"{filename} is larger than {MAX_LEADS_FILE_BYTES // (1024 * 1024)} MB."
        )
    warnings: list[str] = []
    text = _decode(data, filename, warnings)
    lowered = filename.casefold()
    as_json = lowered.endswith((".json", ".jsonl", ".ndjson")) or text.lstrip()[:1] in (
        "[",
        "{",
    )
    raw = _parse_json(text, filename) if as_json else _parse_csv(text, filename)
    return ParsedLeads(validate_records(raw), warnings)
