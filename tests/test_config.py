"""Settings: loading `config.toml`, errors that name file/key/line, and resolution."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tenex_tui.config import (
    DEFAULT_OPENAI_BASE_URL,
    Settings,
    UiSettings,
    find_key_line,
    load_settings,
    parse_settings,
    resolve_model,
)
from tenex_tui.core.errors import ConfigError
from tenex_tui.core.secrets import Secret

CONFIG = Path("/home/u/.config/tenex-tui/config.toml")

FULL_EXAMPLE = """\
model = "gpt-4o-mini"            # default model
provider = "openai"              # the named provider to use
[providers.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
models = []
timeout = 60
idle_timeout = 60
[providers.ollama]
base_url = "http://127.0.0.1:11434/v1"
[remote]
api_base = "https://api.10ex.ai"
api_key_env = "TENEX_API_KEY"
[ui]
theme = "textual-dark"
show_sidebar = true
[ui.keys]
"thread.new" = "ctrl+t"
"""


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, CONFIG)
    return str(info.value)


# -- loading ---------------------------------------------------------------------------


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "nope" / "config.toml")
    assert settings == Settings()
    assert settings.ui == UiSettings()
    assert settings.remote.api_base == "https://api.10ex.ai"
    assert not (tmp_path / "nope").exists()


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_EXAMPLE, encoding="utf-8")
    settings = load_settings(path)
    assert settings.model == "gpt-4o-mini"
    assert settings.provider == "openai"
    assert list(settings.providers) == ["openai", "ollama"]
    openai = settings.providers["openai"]
    assert openai.api_key_env == "OPENAI_API_KEY"
    assert openai.timeout == 60.0 and openai.idle_timeout == 60.0
    assert settings.providers["ollama"].api_key_env is None
    assert settings.ui.keys == {"thread.new": "ctrl+t"}
    assert settings.ui.show_sidebar is True


def test_malformed_toml_names_the_file_and_the_line() -> None:
    text = 'model = "a"\n\n[ui]\ntheme = "x"\nshow_sidebar = \n'
    message = _error(text)
    assert message.startswith(f"{CONFIG} line 5: invalid TOML")


def test_an_unterminated_table_names_its_line() -> None:
    message = _error('model = "a"\n[providers.openai\nbase_url = "x"\n')
    assert f"{CONFIG} line 2:" in message


def test_a_wrong_type_names_the_key_and_its_line() -> None:
    text = (
        'model = "m"\n'
        "[providers.openai]\n"
        'base_url = "https://api.openai.com/v1"\n'
        "\n"
        'timeout = "soon"\n'
    )
    message = _error(text)
    assert message.startswith(f"{CONFIG} line 5: providers.openai.timeout:")
    assert "number" in message
    assert "soon" not in message


def test_a_string_where_a_boolean_belongs_is_refused() -> None:
    message = _error('[ui]\ntheme = "x"\nshow_sidebar = "yes"\n')
    assert message.startswith(f"{CONFIG} line 3: ui.show_sidebar:")


def test_an_unknown_key_names_the_key_and_its_line() -> None:
    message = _error('model = "m"\n[ui]\ntheme = "x"\ncolour = "red"\n')
    assert message == f"{CONFIG} line 4: ui.colour: unknown key"


def test_a_quoted_key_in_a_subtable_is_found() -> None:
    message = _error('[ui.keys]\n"thread.new" = "ctrl+t"\n"quit" = 3\n')
    assert message.startswith(f"{CONFIG} line 3: ui.keys.quit:")


def test_a_key_in_the_config_is_refused_without_being_echoed() -> None:
    secret = "sk-CANARYabcdefghijklmnop"
    message = _error(
        f'[providers.x]\nbase_url = "https://h/v1"\napi_key = "{secret}"\n'
    )
    assert message.startswith(f"{CONFIG} line 3: providers.x.api_key: unknown key")
    assert "api_key_env" in message
    assert secret not in message


def test_a_key_pasted_into_api_key_env_is_not_echoed() -> None:
    secret = "sk-CANARYabcdefghijklmnop"
    message = _error(
        f'[providers.x]\nbase_url = "https://h/v1"\napi_key_env = "{secret}"\n'
    )
    assert "line 3: providers.x.api_key_env: must be the NAME" in message
    assert "CANARY" not in message


def test_a_missing_base_url_points_at_the_table() -> None:
    message = _error('model = "m"\n\n[providers.local]\ntimeout = 3\n')
    assert message == f"{CONFIG} line 3: providers.local.base_url: is required"


def test_the_config_provider_must_exist() -> None:
    message = _error(
        'provider = "nope"\n[providers.a]\nbase_url = "http://127.0.0.1:1/v1"\n'
    )
    assert message.startswith(f"{CONFIG} line 1: provider:")
    assert "nope" in message and "defined: a" in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://host/v1", "http:// or https://"),
        ("https://user:pw@host/v1", "user name or password"),
        ("https://host/v1?api_key=abc", "key in its query string"),
        ("not a url", "http:// or https://"),
    ],
)
def test_unsafe_base_urls_are_refused(url: str, reason: str) -> None:
    message = _error(f'[providers.p]\nbase_url = "{url}"\n')
    assert "line 2: providers.p.base_url:" in message
    assert reason in message


def test_the_remote_api_base_must_be_https_off_this_machine() -> None:
    message = _error('[remote]\napi_base = "http://10.0.0.5"\n')
    assert "line 2: remote.api_base: must be https" in message
    ok = parse_settings('[remote]\napi_base = "http://127.0.0.1:8080/"\n', CONFIG)
    assert ok.remote.api_base == "http://127.0.0.1:8080"


def test_an_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(folder)


def test_find_key_line_skips_multiline_strings() -> None:
    text = 'a = """\ntimeout = 1\n"""\n[p]\ntimeout = 2\n'
    assert find_key_line(text, ("timeout",)) is None
    assert find_key_line(text, ("p", "timeout")) == 5
    assert find_key_line(text, ("p", "missing")) == 4


def test_find_key_line_reads_dotted_keys_and_inline_tables() -> None:
    text = 'providers.local.base_url = "x"\nui = { theme = 3 }\n'
    assert find_key_line(text, ("providers", "local", "base_url")) == 1
    assert find_key_line(text, ("ui", "theme")) == 2


def test_importing_config_touches_nothing(tmp_path: Path) -> None:
    code = (
        "import sys, json, tenex_tui.config as c; c.UiSettings(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    home = tmp_path / "home"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"TENEX_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    loaded = set(json.loads(out.stdout))
    assert not {m for m in loaded if m.split(".")[0] in {"textual", "rich", "openai"}}
    assert "platformdirs" not in loaded
    assert not home.exists()


# -- resolution ------------------------------------------------------------------------

NAMED = parse_settings(
    '[providers.lan]\nbase_url = "http://192.168.1.9:8080/v1"\nmodels = ["m1", "m2"]\n'
    '[providers.cloud]\nbase_url = "https://cloud.example/v1"\napi_key_env = "CLOUD_KEY"\n',
    CONFIG,
)


def test_with_nothing_configured_there_is_a_clear_problem() -> None:
    choice = resolve_model(Settings(), config_file=CONFIG, environ={})
    assert choice.provider is None and choice.model is None
    assert choice.problem is not None
    assert choice.problem.startswith("no model configured: set OPENAI_API_KEY")
    assert "OPENAI_BASE_URL" in choice.problem and str(CONFIG) in choice.problem


def test_openai_env_variables_make_an_env_provider() -> None:
    env = {"OPENAI_API_KEY": "sk-test-1234567890abcdef"}
    choice = resolve_model(Settings(), config_file=CONFIG, environ=env)
    assert choice.problem is None and choice.provider is not None
    assert choice.provider.name == "env"
    assert choice.provider.base_url == DEFAULT_OPENAI_BASE_URL
    assert choice.provider.api_key == Secret("sk-test-1234567890abcdef")
    assert "1234567890" not in repr(choice)


def test_a_base_url_alone_is_enough_for_a_local_server() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1/"}
    choice = resolve_model(Settings(), config_file=CONFIG, environ=env)
    assert choice.provider is not None and choice.problem is None
    assert choice.provider.base_url == "http://127.0.0.1:11434/v1"
    assert choice.provider.api_key is None
    assert choice.warnings == ()


def test_a_bad_openai_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        resolve_model(
            Settings(), config_file=CONFIG, environ={"OPENAI_BASE_URL": "localhost:1"}
        )


def test_env_variables_win_over_an_unnamed_first_provider() -> None:
    choice = resolve_model(
        NAMED, config_file=CONFIG, environ={"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    )
    assert choice.provider is not None and choice.provider.name == "env"


def test_without_env_variables_the_first_provider_is_used() -> None:
    choice = resolve_model(NAMED, config_file=CONFIG, environ={})
    assert choice.provider is not None and choice.provider.name == "lan"
    assert choice.model == "m1"


def test_a_named_provider_wins_over_env_variables() -> None:
    settings = parse_settings(
        'provider = "lan"\n[providers.lan]\nbase_url = "http://127.0.0.1:9/v1"\n',
        CONFIG,
    )
    env = {"OPENAI_API_KEY": "sk-test-1234567890abcdef"}
    choice = resolve_model(settings, config_file=CONFIG, environ=env)
    assert choice.provider is not None and choice.provider.name == "lan"
    flagged = resolve_model(settings, config_file=CONFIG, environ=env, provider="env")
    assert flagged.provider is not None and flagged.provider.name == "env"


def test_the_provider_flag_picks_a_table_and_reads_its_key_variable() -> None:
    env = {"CLOUD_KEY": "  sk-cloud-abcdefghijk  "}
    choice = resolve_model(NAMED, config_file=CONFIG, environ=env, provider="cloud")
    assert choice.provider is not None and choice.provider.name == "cloud"
    assert choice.provider.api_key == Secret("sk-cloud-abcdefghijk")
    assert choice.model is None


def test_a_missing_key_variable_is_a_problem_naming_it() -> None:
    choice = resolve_model(NAMED, config_file=CONFIG, environ={}, provider="cloud")
    assert choice.provider is None
    assert choice.problem is not None
    assert "CLOUD_KEY" in choice.problem and str(CONFIG) in choice.problem


def test_an_unknown_provider_flag_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown provider 'nope'.*defined: lan, cloud"
    ):
        resolve_model(NAMED, config_file=CONFIG, environ={}, provider="nope")


def test_model_precedence_flag_then_env_then_config_then_provider_list() -> None:
    settings = parse_settings(
        'model = "from-config"\n[providers.p]\nbase_url = "http://127.0.0.1:9/v1"\n'
        'models = ["listed"]\n',
        CONFIG,
    )
    env = {"TENEX_MODEL": "from-env"}
    assert (
        resolve_model(settings, config_file=CONFIG, environ=env, model="flag").model
        == "flag"
    )
    assert resolve_model(settings, config_file=CONFIG, environ=env).model == "from-env"
    assert (
        resolve_model(settings, config_file=CONFIG, environ={}).model == "from-config"
    )
    bare = parse_settings(
        '[providers.p]\nbase_url = "http://127.0.0.1:9/v1"\nmodels = ["listed"]\n',
        CONFIG,
    )
    assert resolve_model(bare, config_file=CONFIG, environ={}).model == "listed"


def test_plain_http_to_another_machine_is_allowed_with_a_warning() -> None:
    choice = resolve_model(NAMED, config_file=CONFIG, environ={}, provider="lan")
    assert choice.provider is not None
    assert len(choice.warnings) == 1
    assert "plain HTTP to 192.168.1.9" in choice.warnings[0]


def test_timeouts_reach_the_resolved_provider() -> None:
    settings = parse_settings(
        '[providers.p]\nbase_url = "http://127.0.0.1:9/v1"\ntimeout = 12\n'
        "idle_timeout = 3.5\nmax_retries = 0\n",
        CONFIG,
    )
    choice = resolve_model(settings, config_file=CONFIG, environ={})
    assert choice.provider is not None
    assert (choice.provider.timeout, choice.provider.idle_timeout) == (12.0, 3.5)
    assert choice.provider.max_retries == 0


def test_non_positive_timeouts_are_refused() -> None:
    message = _error('[providers.p]\nbase_url = "http://127.0.0.1:9/v1"\ntimeout = 0\n')
    assert "line 3: providers.p.timeout:" in message
