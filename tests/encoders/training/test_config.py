"""TrainConfig: one source for the augmentation defaults, flat config.json that old run dirs still load."""

from __future__ import annotations

import json
from dataclasses import fields

from encoders.training.config import AugmentParams, TrainConfig


def test_augmentation_defaults_come_from_one_place() -> None:
    from encoders.training.augment import GalaxyAugment

    names = [f.name for f in fields(AugmentParams)]
    defaults = AugmentParams()
    for name in names:
        assert getattr(TrainConfig(), name) == getattr(defaults, name) == getattr(GalaxyAugment(), name)
    aug = GalaxyAugment.from_config(TrainConfig(max_angle=90.0, band_drop=0.1))
    assert isinstance(aug, GalaxyAugment) and aug.max_angle == 90.0 and aug.band_drop == 0.1
    assert aug.bands == TrainConfig().bands


def test_config_json_stays_flat_and_round_trips() -> None:
    config = TrainConfig(noise_sigma=[0.0, 0.01], scale_range=(0.9, 1.1))
    data = json.loads(json.dumps(config.to_dict()))
    assert data["noise_sigma"] == [0.0, 0.01] and "augment" not in data
    assert TrainConfig.from_dict(data) == config
    old = {k: v for k, v in data.items() if k not in ("brightness", "colour", "grey_prob")}  # an older run dir
    assert TrainConfig.from_dict(old).brightness == 0.0
