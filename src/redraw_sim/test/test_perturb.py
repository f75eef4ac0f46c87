import pytest

from redraw_common.perturb import PerturbError, format_perturb, parse_perturb
from redraw_sim.perturb import DMC_PERTURBATIONS, DUCKIETOWN_PERTURBATIONS


def test_parse_compose_and_format():
    assert parse_perturb("", DUCKIETOWN_PERTURBATIONS) == {}
    assert parse_perturb(None, DUCKIETOWN_PERTURBATIONS) == {}
    got = parse_perturb(" trim:0.1, gain:0.7 ,delay:0.2,reversed", DUCKIETOWN_PERTURBATIONS)
    assert got == {"trim": 0.1, "gain": 0.7, "delay": 0.2, "reversed": 1.0}
    assert format_perturb(got, DUCKIETOWN_PERTURBATIONS) == "reversed,trim:0.1,gain:0.7,delay:0.2"
    assert format_perturb({"gain": 1.0, "trim": 0.0}, DUCKIETOWN_PERTURBATIONS) == ""   # nominal values drop out
    assert parse_perturb("wind", DMC_PERTURBATIONS) == {"wind": 2.0}
    assert parse_perturb("torque", DMC_PERTURBATIONS) == {"torque": 4.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("spin:3", r"unknown perturbation 'spin' in 'spin:3'; expected one of \['delay', 'gain', 'reversed', 'trim'\]"),
        ("trim", r"perturbation 'trim' needs a value \(trim:<in \[-0.5, 0.5\]>\)"),
        ("trim:abc", "perturbation 'trim' needs a number, found 'abc'"),
        ("trim:0.9", r"perturbation 'trim' must be in \[-0.5, 0.5\], found 0.9"),
        ("gain:0", r"must be in \[0.1, 3\]"),
        ("delay:-1", r"must be in \[0, 2\] s"),
        ("delay:nan", "must be in"),
        ("gain:2,gain:3", "given twice"),
        ("reversed:0.5", "must be 0 or 1"),
    ],
)
def test_bad_strings_get_clear_errors(text, message):
    with pytest.raises(PerturbError, match=message):
        parse_perturb(text, DUCKIETOWN_PERTURBATIONS)


def test_non_string_is_rejected():
    with pytest.raises(PerturbError, match="must be a string"):
        parse_perturb(0.1, DUCKIETOWN_PERTURBATIONS)
