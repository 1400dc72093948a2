import pytest

from hpv.training.config import DataConfig
from hpv.training.data import Resolutions, build_dataset

TINY_DATA = DataConfig(synthetic_sequences=10, frames=5, real=False, hr_sequences=2)
SMALL_RES = Resolutions(pose=(32,), target=(32,), hr=96)  # the small sizes of the default pipeline


@pytest.fixture(scope="session")
def tiny_dataset():
    return build_dataset(TINY_DATA, SMALL_RES)
