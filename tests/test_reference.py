"""The PyTorch reference pipeline: weights given for a stage it does not build are refused."""

import pytest

from hpv.errors import ConfigError, UnknownNameError
from hpv.pipelines import PIPELINES
from hpv.reference import load_pipeline


def test_weights_for_a_misspelt_stage_are_refused_with_the_closest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'refiner'") as e:
        load_pipeline(PIPELINES.get("default"), {"refnier": "gen.safetensors"}, small=True)
    assert e.value.name == "refnier" and e.value.suggestion == "refiner"


def test_weights_for_a_stage_of_another_pipeline_are_refused():
    with pytest.raises(ConfigError, match="pipeline 'default' does not hold; its stages are fire_gen, refiner"):
        load_pipeline(PIPELINES.get("default"), {"pix2pix_lstm": "gen.safetensors"}, small=True)
