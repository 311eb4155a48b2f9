"""archon.registry: names come from entry points (built-ins too), load lazily, clash loudly; each
backend kind parses its own settings."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from types import SimpleNamespace

import pytest

from archon import registry
from archon.exceptions import ConfigError, SpecError
from archon.registry import (
    OPERATORS,
    Registry,
    backend_settings,
    get_operator,
)
from archon.spec import parse_pipeline, pipeline_json_schema
from backends.presets import (
    PRESETS,
    BackendSpec,
    LocalSettings,
    OpenAISettings,
    resolve_backend_specs,
)
from operators.generate import Generate


def _ep(name: str, value: str, dist: str) -> EntryPoint:
    return EntryPoint(name, value, "test.group")._for(SimpleNamespace(name=dist))  # type: ignore[attr-defined]


@pytest.fixture
def fake_group():
    """A registry over a made-up entry-point group."""
    eps = [
        _ep("dumps", "json:dumps", "pkg-a"),
        _ep("twice", "json:loads", "pkg-a"),
        _ep("twice", "json:dumps", "pkg-b"),
        _ep("missing", "no_such_module_anywhere:thing", "pkg-c"),
    ]
    return Registry("test.group", "widget", find=lambda group: [e for e in eps if group == "test.group"])


def test_names_come_from_the_group_and_load_lazily(fake_group):
    assert fake_group.names() == ["dumps", "missing", "twice"]  # listing imports nothing
    assert fake_group.get("dumps") is json.dumps
    assert fake_group.origin("dumps") == "pkg-a"
    with pytest.raises(ConfigError, match="widget 'missing': cannot load 'no_such_module_anywhere:thing'"):
        fake_group.get("missing")


def test_two_packages_declaring_one_name_is_an_error_naming_both(fake_group):
    with pytest.raises(ConfigError, match="'twice' is declared by two installed packages, 'pkg-a' and 'pkg-b'"):
        fake_group.get("twice")
    assert fake_group.get("dumps") is json.dumps  # the other names still work


def test_unknown_names_suggest_and_list_the_valid_ones(fake_group):
    with pytest.raises(ConfigError, match="unknown widget 'dump'. Did you mean 'dumps'\\? Valid widgets: dumps, missing, twice"):
        fake_group.get("dump")
    with pytest.raises(SpecError, match="Did you mean 'generate'"):
        get_operator("generat")


def test_an_empty_group_says_archon_may_not_be_installed():
    with pytest.raises(ConfigError, match="no package declares any .*pip install"):
        Registry("test.group", "widget", find=lambda group: []).get("x")


def test_register_adds_refuses_taken_names_and_unregisters(fake_group):
    fake_group.register("loads", "json:loads")
    assert fake_group.get("loads") is json.loads and fake_group.origin("loads") is None
    with pytest.raises(ConfigError, match="already registered"):
        fake_group.register("dumps", len)
    fake_group.register("dumps", len, replace=True)
    assert fake_group.get("dumps") is len
    fake_group.unregister("dumps")
    assert fake_group.get("dumps") is json.dumps


def test_builtins_are_entry_points_of_archon_itself():
    assert get_operator("generate") is Generate and OPERATORS.origin("generate") == "archon-llm"
    assert backend_settings("openai") is OpenAISettings and backend_settings("local") is LocalSettings


def test_plugged_objects_are_checked():
    class NotAnOperator:
        kind = "odd"

    class Misnamed(Generate):
        kind = "something_else"

    for name, obj, why in (("odd", NotAnOperator, "not a subclass of operators.base.Operator"),
                           ("misnamed", Misnamed, "set kind = 'misnamed'")):
        with OPERATORS.registered(name, obj), pytest.raises(ConfigError, match=why):
            get_operator(name)


# -- backend settings by kind ----------------------------------------------------------------------

def _pipeline(backends: dict) -> dict:
    return {"backends": backends, "nodes": [{"id": "a", "op": "generate", "model": "local/gemma-3-270m"}]}


def test_each_kind_parses_its_own_settings():
    spec = parse_pipeline(_pipeline({"local": {"n_ctx": 8192}, "fast": {"base_url": "http://127.0.0.1:1/v1"}}))
    assert isinstance(spec.backends["local"], LocalSettings) and spec.backends["local"].n_ctx == 8192
    assert isinstance(spec.backends["fast"], OpenAISettings)
    merged = resolve_backend_specs(spec.backends)
    assert merged["local"].n_ctx == 8192 and merged["local"].max_concurrency == 1  # the rest from the preset


def test_unknown_keys_for_a_kind_name_the_file_backend_and_valid_keys():
    with pytest.raises(SpecError) as err:
        parse_pipeline(_pipeline({"fast": {"base_url": "http://127.0.0.1:1/v1", "n_ctx": 8192}}), source="p.yaml")
    msg = str(err.value)
    assert "p.yaml: backend 'fast': unknown setting 'n_ctx'" in msg
    assert "Valid settings for kind openai: kind, max_concurrency" in msg and "base_url, api_key_env" in msg
    with pytest.raises(SpecError, match="backend 'local': unknown setting 'base_url'.* for kind local: .*n_ctx"):
        parse_pipeline(_pipeline({"local": {"base_url": "http://127.0.0.1:1/v1"}}))
    with pytest.raises(SpecError, match="field 'kind': unknown kind 'loacl'. Did you mean 'local'"):
        parse_pipeline(_pipeline({"x": {"kind": "loacl"}}))


def test_preset_overrides_keep_unset_fields_and_another_kind_replaces():
    merged = resolve_backend_specs({"openai": BackendSpec(max_concurrency=4),
                                    "local": OpenAISettings(base_url="http://127.0.0.1:9/v1")})
    assert merged["openai"].max_concurrency == 4 and merged["openai"].base_url == PRESETS["openai"].base_url
    assert isinstance(merged["local"], OpenAISettings) and merged["local"].base_url == "http://127.0.0.1:9/v1"


def test_schema_shows_each_backend_kinds_settings():
    backends = pipeline_json_schema()["properties"]["backends"]["additionalProperties"]["anyOf"]
    defs = pipeline_json_schema()["$defs"]
    by_kind = {defs[v["$ref"].rsplit("/", 1)[1]]["properties"]["kind"]["const"]: defs[v["$ref"].rsplit("/", 1)[1]]
               for v in backends}
    assert {"openai", "local"} <= set(by_kind)
    assert "n_ctx" in by_kind["local"]["properties"] and "n_ctx" not in by_kind["openai"]["properties"]
    assert "base_url" in by_kind["openai"]["properties"] and by_kind["local"]["additionalProperties"] is False


def test_a_backend_class_must_bring_a_settings_model():
    class NoSettings:
        Settings = dict

        async def complete(self, request):
            raise AssertionError

    with registry.BACKENDS.registered("test-no-settings", NoSettings), pytest.raises(
            ConfigError, match="Settings must subclass backends.presets.BackendSpec"):
        backend_settings("test-no-settings")


def test_an_op_that_cannot_load_is_reported_at_its_node():
    with OPERATORS.registered("broken", "no_such_plugin_module:Op"), pytest.raises(
            SpecError, match="p.yaml: node 'a': field 'op': op 'broken': cannot load 'no_such_plugin_module:Op'"):
        parse_pipeline({"nodes": [{"id": "a", "op": "broken"}]}, source="p.yaml")


def test_a_copy_takes_registrations_that_leave_the_original_alone(fake_group):
    copy = fake_group.copy()
    copy.register("loads", "json:loads")
    assert copy.get("loads") is json.loads and copy.get("dumps") is json.dumps
    assert "loads" not in fake_group
