import pytest

from policy.schedules import ScheduleConfig, lr_factor
from mathrl.config import ConfigError, from_dict


def factors(**kw):
    cfg = ScheduleConfig(**kw)
    return [lr_factor(s, cfg) for s in range(cfg.total_steps)]


def test_wsd_warms_up_holds_then_decays():
    f = factors(kind="wsd", warmup_steps=4, total_steps=20, decay_fraction=0.25, min_lr_ratio=0.1)
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f[4:15] == [1.0] * 11  # stable plateau until the last 5 steps
    decay = f[15:]
    assert all(b < a for a, b in zip(decay, decay[1:]))
    assert decay[-1] == pytest.approx(0.1)


def test_cosine_and_constant():
    cos = factors(kind="cosine", warmup_steps=0, total_steps=11, min_lr_ratio=0.0)
    assert cos[0] == pytest.approx(1.0) and cos[5] == pytest.approx(0.5) and cos[10] == pytest.approx(0.0)
    assert factors(kind="constant", warmup_steps=2, total_steps=6) == pytest.approx([0.5, 1, 1, 1, 1, 1])


def test_schedule_validation_names_key():
    with pytest.raises(ConfigError, match="^warmup_steps: must be in"):
        from_dict(ScheduleConfig, {"warmup_steps": 50, "total_steps": 10})
