"""Settings: defaults, a bad BULKHEAD_* variable as one line naming it, and every setting documented."""

from __future__ import annotations

import pytest
from helpers import REPO, clear_bulkhead_env

from mcp_server.config import MIB, load_settings
from mcp_server.errors import Misconfigured


def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_bulkhead_env(monkeypatch)
    settings = load_settings(_env_file=None)
    assert settings.default_schema == "public"
    assert settings.max_content_bytes == MIB
    assert settings.database_url is None
    assert settings.data_dir.name == "bulkhead"
    assert not settings.auth_enabled


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BULKHEAD_MAX_CONTENT_BYTES", "lots", "BULKHEAD_MAX_CONTENT_BYTES: Input should be a valid integer"),
        ("BULKHEAD_MAX_CONTENT_BYTES", "0", "BULKHEAD_MAX_CONTENT_BYTES: Input should be greater than or equal to 1"),
        ("BULKHEAD_POOL_MAX_SIZE", "-3", "BULKHEAD_POOL_MAX_SIZE"),
        ("BULKHEAD_AUTH_DISABLED", "perhaps", "BULKHEAD_AUTH_DISABLED"),
        ("BULKHEAD_LOG_LEVEL", "LOUD", "BULKHEAD_LOG_LEVEL: must be one of"),
    ],
)
def test_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    clear_bulkhead_env(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(Misconfigured) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message and value not in message.split(":", 1)[1]


def test_env_example_and_readme_list_every_setting() -> None:
    from mcp_server.config import Settings

    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for field in Settings.model_fields:
        variable = f"BULKHEAD_{field.upper()}"
        assert f"# {variable}=" in example, variable
        assert variable in readme, variable
