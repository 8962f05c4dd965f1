"""Configuration: defaults, .env, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_service.passwords import verify_password
from relay_service.settings import Settings, SettingsError


def test_defaults_are_the_embedded_demo_setup() -> None:
    settings = Settings.from_env({}, dotenv=None)
    assert settings.simulators
    assert settings.database_url == "sqlite+aiosqlite:///relay-data/relay.db"
    assert settings.media_addresses == ("127.0.0.1",)
    assert settings.graph_base_url == "http://127.0.0.1:8080/whatsapp-sim"
    assert settings.whatsapp_app_secret  # generated for the in-process simulator
    assert settings.rtcp_interval == 5.0  # libwebrtc's audio report interval


def test_the_rtcp_interval_limit_is_the_librarys() -> None:
    from relay_service import settings as settings_module
    from webrtc_ext.config import MAX_RTCP_INTERVAL

    assert settings_module.MAX_RTCP_INTERVAL == MAX_RTCP_INTERVAL


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nRELAY_PORT=9000\nexport RELAY_HOST='0.0.0.0'\nRELAY_AGENTS=a:b\n")
    settings = Settings.from_env({"RELAY_PORT": "9001"}, dotenv=dotenv)
    assert settings.port == 9001
    assert settings.host == "0.0.0.0"
    assert list(settings.agents) == ["a"]
    assert verify_password(settings.agents["a"], "b")


def test_production_requires_whatsapp_credentials_and_lists_every_problem() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {"SIMULATORS": "off", "RELAY_PORT": "http", "RELAY_UDP_PORT_RANGE": "5-1"},
            dotenv=None,
        )
    message = str(caught.value)
    for name in (
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_PHONE_NUMBER_ID",
        "RELAY_PORT",
        "RELAY_UDP_PORT_RANGE",
    ):
        assert name in message


def test_media_addresses_star_means_every_interface() -> None:
    assert Settings.from_env({"RELAY_MEDIA_ADDRESSES": "*"}, dotenv=None).media_addresses is None
    settings = Settings.from_env({"RELAY_MEDIA_ADDRESSES": "192.0.2.2, ::1"}, dotenv=None)
    assert settings.media_addresses == ("192.0.2.2", "::1")


def test_demo_media_follows_the_listen_address() -> None:
    from relay_service.cli import media_for

    assert media_for("127.0.0.1") == "127.0.0.1"
    assert media_for("0.0.0.0") == "*"
    assert media_for("192.0.2.2") == "192.0.2.2"


def test_meta_is_the_graph_api_when_simulators_are_off() -> None:
    settings = Settings.from_env(
        {
            "SIMULATORS": "off",
            "WHATSAPP_APP_SECRET": "s",
            "WHATSAPP_VERIFY_TOKEN": "v",
            "WHATSAPP_ACCESS_TOKEN": "t",
            "WHATSAPP_PHONE_NUMBER_ID": "123",
            "RELAY_UDP_PORT_RANGE": "40000-40100",
        },
        dotenv=None,
    )
    assert settings.graph_base_url == "https://graph.facebook.com"
    assert settings.udp_port_range == (40000, 40100)
    # Meta's real API with media on 127.0.0.1: calls would ring and connect without audio.
    (warning,) = settings.warnings
    assert "RELAY_MEDIA_ADDRESSES" in warning and "graph.facebook.com" in warning
    production = dict(
        SIMULATORS="off",
        WHATSAPP_APP_SECRET="s",
        WHATSAPP_VERIFY_TOKEN="v",
        WHATSAPP_ACCESS_TOKEN="t",
        WHATSAPP_PHONE_NUMBER_ID="123",
    )
    public = Settings.from_env({**production, "RELAY_MEDIA_ADDRESSES": "203.0.113.7"}, dotenv=None)
    assert public.warnings == []
    everywhere = Settings.from_env({**production, "RELAY_MEDIA_ADDRESSES": "*"}, dotenv=None)
    assert everywhere.warnings == []
    local_graph = Settings.from_env(
        {**production, "WHATSAPP_GRAPH_BASE_URL": "http://127.0.0.1:9000"}, dotenv=None
    )
    assert local_graph.warnings == [], "a Graph API on this machine (a test rig) is fine"
    assert Settings.from_env({}, dotenv=None).warnings == [], "the simulators are local"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIMULATORS", "maybe"),
        ("GREETING_FILE", "/nonexistent/greeting.wav"),
        ("RELAY_AGENTS", "nopassword"),
        ("RELAY_DATABASE_URL", "sqlite:///x.db"),
        ("RELAY_NO_MEDIA_TIMEOUT", "-1"),
    ],
)
def test_bad_values_are_named_in_the_error(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value}, dotenv=None)


def test_assistant_settings_default_to_the_embedded_realtime_simulator() -> None:
    settings = Settings.from_env({"ASSISTANT_ENABLED": "on", "RELAY_PORT": "9100"}, dotenv=None)
    assert settings.assistant_enabled and not settings.transcription_enabled
    assert settings.realtime_base_url == "http://127.0.0.1:9100/openai-sim/v1"
    assert settings.openai_api_key  # generated, shared with the in-process simulator
    assert settings.case_directory["4711"].startswith("open")
    assert settings.ice_nomination == "aggressive"
    assert settings.media_bridge == "rtp"


def test_assistant_settings_are_validated(tmp_path: Path) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text('{"99": "pending"}')
    settings = Settings.from_env(
        {
            "TRANSCRIPTION_ENABLED": "on",
            "OPENAI_BASE_URL": "https://api.openai.com/v1/",
            "OPENAI_API_KEY": "sk-x",
            "CASE_DIRECTORY": str(cases),
            "RELAY_ICE_NOMINATION": "regular",
            "RELAY_RTCP_INTERVAL": "2.5",
        },
        dotenv=None,
    )
    assert settings.rtcp_interval == 2.5
    assert settings.realtime_base_url == "https://api.openai.com/v1"
    assert dict(settings.case_directory) == {"99": "pending"}
    assert settings.ice_nomination == "regular"
    with pytest.raises(SettingsError) as error:
        Settings.from_env(
            {
                "ASSISTANT_ENABLED": "maybe",
                "TRANSCRIPTION_ENABLED": "on",
                "OPENAI_BASE_URL": "https://api.openai.com/v1",
                "CASE_DIRECTORY": str(tmp_path / "missing.json"),
                "KEYPAD_PAUSE": "0",
                "RELAY_ICE_NOMINATION": "eager",
                "RELAY_MEDIA_BRIDGE": "magic",
                "RELAY_RTCP_INTERVAL": "60",
            },
            dotenv=None,
        )
    text = str(error.value)
    for name in (
        "ASSISTANT_ENABLED",
        "OPENAI_API_KEY",
        "CASE_DIRECTORY",
        "KEYPAD_PAUSE",
        "RELAY_ICE_NOMINATION",
        "RELAY_MEDIA_BRIDGE",
        "RELAY_RTCP_INTERVAL",
    ):
        assert name in text


def test_operations_settings_for_replicas_and_logs() -> None:
    settings = Settings.from_env(
        {
            "RELAY_DRAIN_TIMEOUT": "0",
            "RELAY_REDIS_URL": "redis://redis.example:6379/0",
            "RELAY_REPLICA_ID": "relay-0",
            "RELAY_LOG_FORMAT": "JSON",
        },
        dotenv=None,
    )
    assert settings.drain_timeout == 0 and settings.lease_ttl == 10.0
    assert (settings.redis_url, settings.replica_id) == ("redis://redis.example:6379/0", "relay-0")
    assert settings.log_format == "json"
    assert Settings.from_env({}, dotenv=None).replica_id  # host name and process id


def test_dotenv_quotes_unknown_keys_and_blank_values(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        'RELAY_PUBLIC_URL="https://relay.example"\nSOMETHING_ELSE=1\nRELAY_PORT=\n'
        "RELAY_UDP_PORT_RANGE=40000-40009\n"
    )
    settings = Settings.from_env({}, dotenv=dotenv)
    assert settings.base_url == "https://relay.example"
    assert settings.port == 8080  # a blank value means the default
    assert settings.udp_port_range == (40000, 40009)


def test_serve_prints_one_line_per_problem_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay_service.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELAY_PORT", "http")
    monkeypatch.setenv("RELAY_LOG_FORMAT", "xml")
    assert main(["serve"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "relay-service: invalid configuration:"
    assert sorted(line.split()[1] for line in lines[1:]) == ["RELAY_LOG_FORMAT", "RELAY_PORT"]


@settings(deadline=None)  # a loaded machine is not a failure
@given(low=st.integers(-5, 70000), high=st.integers(-5, 70000))
def test_udp_port_range_is_accepted_exactly_when_it_is_a_valid_range(low: int, high: int) -> None:
    environ = {"RELAY_UDP_PORT_RANGE": f"{low}-{high}"}
    if 1 <= low <= high <= 65535:
        assert Settings.from_env(environ, dotenv=None).udp_port_range == (low, high)
    else:
        with pytest.raises(SettingsError, match="RELAY_UDP_PORT_RANGE"):
            Settings.from_env(environ, dotenv=None)


@settings(deadline=None)  # a loaded machine is not a failure
@given(raw=st.text(max_size=40))
def test_any_agents_value_is_parsed_or_named_in_one_line(raw: str) -> None:
    try:
        parsed = Settings.from_env({"RELAY_AGENTS": raw}, dotenv=None)
    except SettingsError as exc:
        assert len(exc.problems) == 1 and exc.problems[0].startswith("RELAY_AGENTS ")
    else:
        assert parsed.agents and all(name and password for name, password in parsed.agents.items())


def test_replica_settings_default_to_one_process_and_are_validated() -> None:
    settings = Settings.from_env({}, dotenv=None)
    assert settings.redis_url == "" and settings.drain_timeout == 25.0
    assert settings.lease_ttl == 10.0 and settings.replica_id
    cluster = Settings.from_env(
        {
            "RELAY_REDIS_URL": "redis://127.0.0.1:6379/0",
            "RELAY_REPLICA_ID": "pod-a",
            "RELAY_DRAIN_TIMEOUT": "0",
            "RELAY_LEASE_TTL": "4.5",
        },
        dotenv=None,
    )
    assert (cluster.redis_url, cluster.replica_id) == ("redis://127.0.0.1:6379/0", "pod-a")
    assert (cluster.drain_timeout, cluster.lease_ttl) == (0.0, 4.5)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "RELAY_REDIS_URL": "localhost:6379",
                "RELAY_DRAIN_TIMEOUT": "-1",
                "RELAY_LEASE_TTL": "0",
            },
            dotenv=None,
        )
    message = str(caught.value)
    assert "RELAY_REDIS_URL must look like redis://" in message
    assert "RELAY_DRAIN_TIMEOUT must be positive" in message
    assert "RELAY_LEASE_TTL must be positive" in message
