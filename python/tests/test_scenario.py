"""Loading scenarios, `set`, and their validation errors with key path and line."""

from __future__ import annotations

import datetime

import pytest

import brandsim
from conftest import cli

KP = "scenarios/knowledge_platform.toml"


def test_from_file_resolves_like_the_cli(tmp_path) -> None:
    scenario = brandsim.Scenario.from_file(KP).set("brand.value", 0.5)
    cli("run", KP, "--set", "brand.value=0.5", "-r", "2", "--set", "market.population=1000",
        "--set", "simulation.days=3", "-q", "--no-plots", "--out", str(tmp_path / "cli"))
    resolved = scenario.set("market.population", 1000).set("simulation.days", 3)
    stored = (tmp_path / "cli" / "scenario.toml").read_text()
    # The stored scenario also holds --replications.
    assert resolved.set("simulation.replications", 2).to_toml() == stored
    assert scenario.name == "knowledge_platform"
    assert scenario.to_dict()["brand"]["value"] == 0.5


def test_set_returns_a_new_scenario_and_keeps_the_old_one() -> None:
    base = brandsim.Scenario.from_file(KP)
    changed = base.set("channels.kol.daily_budget", 4000).set("content.annual-vip.price", 199)
    assert base.to_dict()["channels"][3]["daily_budget"] != 4000
    assert changed.to_dict()["channels"][3]["daily_budget"] == 4000.0
    assert changed.overrides == ("channels.kol.daily_budget=4000", "content.annual-vip.price=199")
    assert changed.set("optimize.estimator", "fd").to_dict()["optimize"]["estimator"] == "fd"


def test_from_toml_and_from_dict_round_trip() -> None:
    base = brandsim.Scenario.from_file("scenarios/bass.toml")
    document = base.to_dict()
    again = brandsim.Scenario.from_dict(document)
    assert again.to_dict() == document
    text_again = brandsim.Scenario.from_toml(base.to_toml())
    assert text_again.to_dict() == document
    named = brandsim.Scenario.from_toml(base.to_toml().replace('name = "bass"\n', ""), name="mine")
    assert named.name == "mine"


def test_from_dict_carries_dates() -> None:
    calendar = brandsim.Scenario.from_file("scenarios/campaign_calendar.toml").to_dict()
    assert calendar["simulation"]["start_date"] == datetime.date(2026, 1, 1)
    again = brandsim.Scenario.from_dict(calendar)
    assert again.to_dict()["simulation"]["start_date"] == datetime.date(2026, 1, 1)


def test_unknown_key_is_rejected_with_key_path_and_line() -> None:
    text = 'name = "x"\n[simulation]\ndays = 10\nreplicatons = 3\n'
    with pytest.raises(brandsim.ScenarioError) as caught:
        brandsim.Scenario.from_toml(text)
    error = caught.value
    assert error.key_path == "simulation.replicatons"
    assert error.line == 4
    assert error.column == len("replicatons = ") + 1
    assert error.file == "scenario.toml"
    assert str(error).startswith("scenario.toml:4: simulation.replicatons: ")


def test_out_of_range_value_in_a_file_names_its_line(tmp_path) -> None:
    text = open("scenarios/bass.toml").read().replace("population = 100_000", "population = -5")
    assert "population = -5" in text
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(brandsim.ScenarioError) as caught:
        brandsim.Scenario.from_file(path)
    line = text.splitlines().index("population = -5") + 1
    assert (caught.value.key_path, caught.value.line, caught.value.file) == ("market.population", line, str(path))
    assert caught.value.column == len("population = ") + 1
    # The message is the CLI's.
    refused = cli("validate", str(path), expect=2)
    assert refused.stderr == f"error: {caught.value}\n"


def test_bad_set_is_rejected_with_key_path_and_no_line() -> None:
    base = brandsim.Scenario.from_file(KP)
    with pytest.raises(brandsim.ScenarioError) as caught:
        base.set("channels.tv.daily_budget", 10)
    assert caught.value.key_path == "channels.tv.daily_budget"
    assert caught.value.line is None
    assert 'no channel named "tv"' in str(caught.value)
    with pytest.raises(brandsim.ScenarioError) as caught:
        base.set("brand.value", "high")
    assert caught.value.key_path == "brand.value"
    with pytest.raises(brandsim.ScenarioError) as caught:
        base.set("market.segments.students.share", 1.5)
    assert caught.value.key_path.startswith("market.segments")
    with pytest.raises(brandsim.ScenarioError):
        base.set("brand.value=1", 2)


def test_values_toml_cannot_hold_are_type_errors() -> None:
    with pytest.raises(TypeError):
        brandsim.Scenario.from_dict({"name": None})
    with pytest.raises(TypeError):
        brandsim.Scenario.from_file(KP).set("brand.value", object())


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(brandsim.ScenarioError) as caught:
        brandsim.Scenario.from_toml('name = "x"\n[market\npopulation = 3\n')
    assert caught.value.line == 2
    assert caught.value.column == 8
    assert caught.value.key_path is None


def test_a_bad_variant_is_refused_at_its_line_and_column(tmp_path) -> None:
    text = open("scenarios/strategies.toml").read() + (
        '\n[[variants]]\nname = "tv"\nset = { "channels.tv.daily_budget" = 5.0 }\n'
    )
    path = tmp_path / "v.toml"
    path.write_text(text)
    with pytest.raises(brandsim.ScenarioError) as caught:
        brandsim.compare(str(path), replications=2)
    error = caught.value
    assert error.line == len(text.splitlines())
    assert error.key_path is not None and error.key_path.endswith('.set."channels.tv.daily_budget"')
    assert error.column == text.splitlines()[-1].index("5.0") + 1
    assert cli("compare", str(path), "-r", "2", "-q", expect=2).stderr == f"error: {error}\n"


def test_from_toml_reads_a_relative_schedule_file_from_base_dir() -> None:
    text = open("scenarios/campaign_calendar.toml").read()
    from_file = brandsim.Scenario.from_file("scenarios/campaign_calendar.toml").to_dict()
    from_text = brandsim.Scenario.from_toml(text, name="campaign_calendar", base_dir="scenarios")
    assert from_text.to_dict() == from_file
    with pytest.raises(brandsim.ScenarioError) as caught:
        brandsim.Scenario.from_toml(text, name="campaign_calendar", base_dir="elsewhere")
    assert caught.value.key_path == "schedule.file"
    assert caught.value.file == "elsewhere/campaign_calendar.toml"
