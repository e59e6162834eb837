"""The notebooks' smoke switch: an explicit FKP_SMOKE, or CI only when it says 1 or true."""

import pytest

from fkp.utils import smoke_mode


@pytest.mark.parametrize(
    ("smoke", "ci", "expected"),
    [
        (None, None, False),
        ("1", None, True),
        ("TRUE", None, True),
        ("0", None, False),
        (None, "true", True),
        (None, "1", True),
        (None, "false", False),
        (None, "", False),
        ("false", "false", False),
    ],
)
def test_smoke_mode_reads_fkp_smoke_and_ci(monkeypatch, smoke, ci, expected):
    for name, value in (("FKP_SMOKE", smoke), ("CI", ci)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert smoke_mode() is expected
