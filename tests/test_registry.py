import pytest

from hpv.errors import DuplicateRegistrationError, HpvError, UnknownNameError
from hpv.registry import Registry


def test_duplicate_name_is_an_error():
    reg = Registry("widget")
    reg.add("a", 1)
    with pytest.raises(DuplicateRegistrationError):
        reg.add("a", 2)


def test_unknown_name_lists_choices_and_closest():
    reg = Registry("widget")
    for n in ("fire_gen", "refiner", "espcn_x3"):
        reg.add(n, n)
    with pytest.raises(UnknownNameError) as e:
        reg.get("fire_gn")
    assert e.value.suggestion == "fire_gen"
    assert "Did you mean 'fire_gen'?" in str(e.value)
    assert "espcn_x3, fire_gen, refiner" in str(e.value)
    assert isinstance(e.value, HpvError) and e.value.exit_code == 2


def test_unknown_name_messages_read_as_english():
    from hpv.errors import UnknownNameError

    assert "Valid targets: a, b" in str(UnknownNameError("target", "x", ["b", "a"]))
    message = str(UnknownNameError("precision for target onnx-cpu", "fp64", ["fp32", "int8"]))
    assert "Valid ones: fp32, int8" in message and "onnx-cpus" not in message
