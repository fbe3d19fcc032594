"""Config loading: every mistake names its dotted key and what is allowed."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from mathrl.config import ConfigError, from_dict, load_config, parse_cli, require, to_dict
from rollout.config import RolloutConfig


@dataclass(frozen=True)
class Inner:
    size: int = 2
    kind: Literal["a", "b"] = "a"

    def __post_init__(self):
        require(self.size > 0, "size", f"must be > 0, got {self.size}")


@dataclass(frozen=True)
class Stage:
    name: str = "x"
    lr: float = 1e-3
    tags: list[str] = field(default_factory=list)
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)
    named: dict[str, Inner] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)


def error_of(data=None, overrides=(), cls=Stage) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        if overrides:
            load_config(cls, None, overrides)
        else:
            from_dict(cls, data)
    return info.value


def test_defaults_and_overrides_build_nested_configs():
    cfg = load_config(Stage, None, ["inner.size=5", "rollout.n=4", "lr=2e-4", "tags=[a, b]", "limit=null"])
    assert cfg.inner.size == 5 and cfg.rollout.n == 4 and cfg.lr == pytest.approx(2e-4)
    assert cfg.tags == ["a", "b"] and cfg.limit is None
    assert isinstance(cfg.lr, float)
    # untouched fields keep their defaults
    assert cfg.rollout.temperature == RolloutConfig().temperature


def test_mappings_of_configs_are_built_and_checked():
    cfg = load_config(Stage, None, ["named.a.size=3", "weights.x=1"])
    assert cfg.named == {"a": Inner(size=3)} and cfg.weights == {"x": 1.0}
    assert error_of({"named": {"a": {"size": 0}}}).key == "named.a.size"
    assert error_of({"named": {"a": {"sise": 1}}}).key == "named.a.sise"
    assert error_of({"weights": {"x": "heavy"}}).key == "weights.x"


def test_yaml_file_then_override_wins(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  size: 3\nrollout:\n  n: 16\n")
    cfg = load_config(Stage, path, ["rollout.n=2"])
    assert (cfg.inner.size, cfg.rollout.n) == (3, 2)


def test_rollout_n_zero_names_the_key():
    err = error_of(overrides=["rollout.n=0"])
    assert err.key == "rollout.n"
    assert "rollout.n" in str(err) and ">= 1" in str(err)


def test_nested_validation_is_prefixed():
    err = error_of({"inner": {"size": -1}})
    assert err.key == "inner.size" and "must be > 0" in str(err)


def test_unknown_key_names_path_and_suggests():
    err = error_of(overrides=["rollout.temprature=0.5"])
    assert err.key == "rollout.temprature"
    assert "did you mean 'temperature'" in str(err)
    assert "allowed here" in str(err) and "max_tokens" in str(err)


def test_unknown_top_level_key():
    err = error_of({"nmae": "y"})
    assert err.key == "nmae" and "did you mean 'name'" in str(err)


@pytest.mark.parametrize(
    "overrides, key, fragment",
    [
        (["inner.size=two"], "inner.size", "expected an integer"),
        (["inner.size=true"], "inner.size", "expected an integer"),
        (["lr=fast"], "lr", "expected a number"),
        (["inner.kind=c"], "inner.kind", "choose one of 'a', 'b'"),
        (["tags=3"], "tags", "expected a list"),
        (["tags=[1]"], "tags[0]", "expected a string"),
        (["limit=x"], "limit", "expected an integer"),
        (["inner=4"], "inner", "expected a mapping"),
        (["rollout.engine.dtype=fp64"], "rollout.engine.dtype", "choose one of"),
    ],
)
def test_bad_values_name_key_and_allowed(overrides, key, fragment):
    err = error_of(overrides=overrides)
    assert err.key == key
    assert fragment in str(err)


def test_cross_field_check_says_how_to_fix():
    err = error_of(overrides=["rollout.max_tokens=2048"])
    assert err.key == "rollout.max_tokens" and "engine.max_model_len" in str(err)


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(Stage, None, ["rollout.n"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Stage, tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at top level"):
        load_config(Stage, tmp_path / "list.yaml")


def test_round_trip_through_dict():
    cfg = load_config(Stage, None, ["rollout.n=3", "tags=[q]"])
    assert from_dict(Stage, to_dict(cfg)) == cfg


def test_parse_cli_exits_with_message(capsys):
    with pytest.raises(SystemExit) as info:
        parse_cli(Stage, ["rollout.n=0"])
    assert info.value.code == 2
    assert "rollout.n" in capsys.readouterr().err
    assert parse_cli(Stage, ["inner.size=7"]).inner.size == 7


def test_every_shipped_config_loads_into_its_stage():
    from pathlib import Path

    from mathrl.stages import STAGES

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.yaml"))
    assert files
    for path in files:
        # <stage>_<size>.yaml; a stage name may itself hold "_" (train_rm_tiny.yaml -> train_rm)
        stage = max((s for s in STAGES if path.stem.startswith(f"{s}_")), key=len, default=path.stem.split("_")[0])
        assert stage in STAGES, f"{path.name}: no stage config named {stage!r} in mathrl.stages.STAGES"
        load_config(STAGES[stage], path)


def test_rerun_with_a_changed_config_keeps_the_earlier_one(tmp_path, capsys):
    from mathrl.runs import save_config

    first, second = Stage(lr=1e-3), Stage(lr=5e-4, inner=Inner(size=3))
    save_config(first, tmp_path)
    save_config(first, tmp_path)  # the same config again: nothing to keep
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    assert capsys.readouterr().out == ""

    save_config(second, tmp_path)
    save_config(first, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.1.yaml", "config.2.yaml", "config.yaml"]
    assert load_config(Stage, tmp_path / "config.1.yaml") == first
    assert load_config(Stage, tmp_path / "config.2.yaml") == second
    assert load_config(Stage, tmp_path / "config.yaml") == first
    printed = capsys.readouterr().out
    assert "lr: 0.001 -> 0.0005" in printed and "inner.size: 2 -> 3" in printed and "config.1.yaml" in printed
