import io

import pytest

from hpv.pose import synthetic_pose


@pytest.fixture(scope="session")
def synthetic_bytes() -> bytes:
    buffer = io.BytesIO()
    synthetic_pose(num_frames=12, seed=3).write(buffer)
    return buffer.getvalue()
