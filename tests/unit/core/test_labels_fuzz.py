"""Property tests of healthd.core.labels.parse: any labels give a LabelPolicy, never an error.

A bad value is reported in ``problems`` (naming its label) and ignored; nothing is raised.
The label keys are read from the module, so labels added later are fuzzed too.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from healthd.core import labels
from tests.unit.fuzzing import floats, ints, texts

KEYS = tuple(sorted(v for k, v in vars(labels).items()
                    if k.isupper() and not k.startswith("_") and isinstance(v, str)))
SECONDS_KEYS = (labels.GRACE, labels.STOP_TIMEOUT, labels.AUTOHEAL_STOP_TIMEOUT)

values = st.one_of(texts("true", "false", "yes", "off", "10s", " 5 ", "1e9", "-0"),
                   floats().map(str), ints().map(str), floats().map(lambda f: f"{f}s"))
label_sets = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), values,
                             max_size=12)


@given(label_sets)
def test_any_labels_give_a_policy_whose_problems_name_their_label(d: dict[str, str]) -> None:
    policy = labels.parse(d)
    assert policy.enable in (None, True, False)
    assert policy.stop_timeout_s is None or (
        isinstance(policy.stop_timeout_s, int) and policy.stop_timeout_s >= 0)
    assert policy.grace_s is None or (math.isfinite(policy.grace_s) and policy.grace_s >= 0)
    assert policy.service is None or isinstance(policy.service, str)
    for problem in policy.problems:
        assert any(f"label {k}=" in problem for k in d), problem
    # The tuple form (ContainerState.labels) reads the same.
    assert labels.parse(tuple(sorted(d.items()))) == policy


@given(st.sampled_from(SECONDS_KEYS),
       st.floats(min_value=0, max_value=1e9, exclude_max=True), st.sampled_from(("", "s")))
def test_a_number_of_seconds_in_range_is_taken(key: str, seconds: float, unit: str) -> None:
    policy = labels.parse({key: f"{seconds!r}{unit}"})
    assert policy.problems == ()
    got = policy.grace_s if key == labels.GRACE else policy.stop_timeout_s
    assert got == (seconds if key == labels.GRACE else int(seconds))
