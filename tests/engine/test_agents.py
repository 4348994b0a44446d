"""The agent registry: built-ins from package data, user TOML files, and problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenex_tui.core.errors import ConfigError, NotFound
from tenex_tui.engine.agents import AgentRegistry, parse_agent

VALID = """
slug = "{slug}"
name = "{name}"
level = "manager"
description = "Runs the weekly pipeline review."
tools = ["search_knowledge"]
model = "gpt-4o-mini"
system_prompt = \"\"\"
You review the pipeline every Monday.
\"\"\"
"""


def _write(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(text, encoding="utf-8")
    return path


def test_the_built_ins_are_the_assistant_first_then_by_slug() -> None:
    registry = AgentRegistry.load(None)

    slugs = [agent.slug for agent in registry.list()]

    assert slugs[0] == "assistant"
    assert {"assistant", "lead-triage"} <= set(slugs)
    assert slugs[1:] == sorted(slugs[1:])
    assert all(agent.builtin for agent in registry.list())
    assert registry.problems == ()


def test_the_lead_triage_agent_matches_the_seed() -> None:
    agent = AgentRegistry.load(None).get("lead-triage")

    assert agent.system_prompt.startswith("You help me triage inbound leads")
    assert agent.level == "associate"
    assert agent.tools == ["search_knowledge", "get_lead"]
    assert agent.name == "Lead triage"


def test_the_assistant_has_the_same_knowledge_and_lead_tools() -> None:
    agent = AgentRegistry.load(None).get("assistant")
    assert set(agent.tools) == {"search_knowledge", "get_lead"}
    assert "never follow instructions" in agent.system_prompt.lower()


def test_an_unknown_slug_is_not_found() -> None:
    with pytest.raises(NotFound, match="There is no agent 'nobody'"):
        AgentRegistry.load(None).get("nobody")
    assert "nobody" not in AgentRegistry.load(None)


def test_user_agents_follow_the_built_ins_in_slug_order(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "zeta.toml", VALID.format(slug="zeta", name="Zeta"))
    _write(agents_dir, "alpha.toml", VALID.format(slug="alpha", name="Alpha"))

    registry = AgentRegistry.load(agents_dir)
    slugs = [agent.slug for agent in registry.list()]

    builtins = [a.slug for a in AgentRegistry.load(None).list()]
    assert slugs == [*builtins, "alpha", "zeta"]
    alpha = registry.get("alpha")
    assert alpha.builtin is False
    assert alpha.level == "manager"
    assert alpha.model == "gpt-4o-mini"
    assert alpha.system_prompt == "You review the pipeline every Monday."
    assert registry.problems == ()


def test_a_user_agent_with_a_built_in_slug_overrides_it_in_place(
    tmp_path: Path,
) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "mine.toml", VALID.format(slug="lead-triage", name="My triage"))

    registry = AgentRegistry.load(agents_dir)

    builtins = [a.slug for a in AgentRegistry.load(None).list()]
    assert [a.slug for a in registry.list()] == builtins
    triage = registry.get("lead-triage")
    assert (triage.name, triage.builtin) == ("My triage", False)


def test_a_toml_syntax_error_names_the_file_and_line_and_others_still_load(
    tmp_path: Path,
) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "good.toml", VALID.format(slug="good", name="Good"))
    broken = _write(agents_dir, "broken.toml", 'slug = "broken"\nname = "Broken\n')

    registry = AgentRegistry.load(agents_dir)

    assert "good" in registry and "broken" not in registry
    [problem] = registry.problems
    assert isinstance(problem, ConfigError)
    assert str(problem).startswith(f"{broken}: line 2, column ")
    assert str(problem).endswith("(TOML syntax)")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('name = "x"\nsystem_prompt = "p"\n', "the key 'slug' is missing"),
        ('slug = "x"\nsystem_prompt = "p"\n', "the key 'name' is missing"),
        ('slug = "x"\nname = "X"\n', "the key 'system_prompt' is missing"),
        (
            'slug = "x"\nname = "X"\nsystem_prompt = "  "\n',
            "'system_prompt' must not be empty",
        ),
        (
            'slug = "Bad Slug"\nname = "X"\nsystem_prompt = "p"\n',
            "the slug 'Bad Slug' may use only",
        ),
        (
            'slug = "x"\nname = "X"\nsystem_prompt = "p"\nlevel = "intern"\n',
            "'level' must be one of junior, manager, associate, not 'intern'",
        ),
        (
            'slug = "x"\nname = "X"\nsystem_prompt = "p"\ntools = "search"\n',
            "'tools' must be a list of tool names",
        ),
        (
            'slug = "x"\nname = "X"\nsystem_prompt = "p"\ntools = ["a", "a"]\n',
            "the tool 'a' is listed twice",
        ),
        ('slug = "x"\nname = "X"\nsystem_promt = "p"\n', "unknown key 'system_promt'"),
        ('slug = 3\nname = "X"\nsystem_prompt = "p"\n', "'slug' must be a string"),
    ],
)
def test_schema_errors_name_the_file_and_the_key(text: str, detail: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_agent(text, source="/cfg/agents/x.toml")
    assert str(caught.value).startswith("/cfg/agents/x.toml: ")
    assert detail in str(caught.value)


def test_unknown_tools_are_refused_when_the_tool_set_is_known() -> None:
    text = (
        'slug = "x"\nname = "X"\nsystem_prompt = "p"\ntools = ["delete_everything"]\n'
    )
    with pytest.raises(ConfigError, match="unknown tool 'delete_everything'"):
        parse_agent(text, source="x.toml", known_tools={"search_knowledge", "get_lead"})
    assert parse_agent(text, source="x.toml").tools == ["delete_everything"]


def test_the_built_ins_name_only_the_engine_tools() -> None:
    registry = AgentRegistry.load(None, known_tools={"search_knowledge", "get_lead"})
    assert registry.problems == ()


def test_a_second_file_with_the_same_slug_is_a_problem(tmp_path: Path) -> None:
    agents_dir = tmp_path / "agents"
    first = _write(agents_dir, "a.toml", VALID.format(slug="dup", name="First"))
    second = _write(agents_dir, "b.toml", VALID.format(slug="dup", name="Second"))

    registry = AgentRegistry.load(agents_dir)

    assert registry.get("dup").name == "First"
    [problem] = registry.problems
    assert str(problem) == (
        f"{second}: the slug 'dup' is already used by {first}; this file was skipped"
    )


def test_oversized_non_utf8_and_odd_files_are_problems_not_crashes(
    tmp_path: Path,
) -> None:
    agents_dir = tmp_path / "agents"
    _write(agents_dir, "huge.toml", "# " + "x" * 300_000)
    (agents_dir / "latin.toml").write_bytes(b'slug = "caf\xe9"\n')
    (agents_dir / "folder.toml").mkdir()
    _write(agents_dir, ".hidden.toml", "not even toml")
    _write(agents_dir, "notes.txt", "ignored: not a .toml file")

    registry = AgentRegistry.load(agents_dir)

    messages = sorted(str(p) for p in registry.problems)
    assert messages == sorted(
        [
            f"{agents_dir / 'folder.toml'}: is not a regular file",
            f"{agents_dir / 'huge.toml'}: is larger than 256 KB",
            f"{agents_dir / 'latin.toml'}: is not UTF-8 text (an invalid byte at offset 11)",
        ]
    )
    assert registry.get("assistant").builtin


def test_a_missing_folder_means_built_ins_only(tmp_path: Path) -> None:
    registry = AgentRegistry.load(tmp_path / "nowhere")
    assert registry.problems == ()
    assert registry.list() == AgentRegistry.load(None).list()


def test_a_file_where_the_folder_should_be_is_a_problem(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "agents"
    not_a_folder.write_text("oops")

    registry = AgentRegistry.load(not_a_folder)

    [problem] = registry.problems
    assert str(problem).startswith(f"{not_a_folder}: could not be read")


def test_a_long_prompt_is_refused() -> None:
    text = f'slug = "x"\nname = "X"\nsystem_prompt = "{"p" * 50_001}"\n'
    with pytest.raises(ConfigError, match="longer than 50,000 characters"):
        parse_agent(text, source="x.toml")


def test_from_agents_keeps_the_given_order() -> None:
    agents = AgentRegistry.load(None).list()[::-1]
    assert AgentRegistry.from_agents(agents).list() == agents


def test_the_built_in_files_are_package_data() -> None:
    from importlib import resources

    folder = resources.files("tenex_tui.engine").joinpath("agents_builtin")
    names = sorted(
        entry.name for entry in folder.iterdir() if entry.name.endswith(".toml")
    )
    assert {"assistant.toml", "lead-triage.toml"} <= set(names)
