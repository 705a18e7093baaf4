"""Baseline file names: one file per test and device key, whatever the test's file, id or length."""

from __future__ import annotations

import pytest

from pytest_accel.baselines import MAX_FILE_STEM, file_stem
from pytest_accel.options import OPT_DEVICE, OPT_MISSING
from tests.helpers import baseline_files

TEST_MODEL = """
from pytest_accel.metrics import Metric

def test_accuracy(accel):
    accel.check(Metric("toy.accuracy", {value}, "", "accuracy", "higher"))
"""


def test_same_file_name_in_two_folders_keeps_two_baselines(pytester: pytest.Pytester) -> None:
    for folder, value in (("a", 0.5), ("b", 0.9)):
        (pytester.path / folder).mkdir()
        (pytester.path / folder / "test_model.py").write_text(TEST_MODEL.format(value=value))
    pytester.runpytest("--import-mode=importlib", f"{OPT_MISSING}=record").assert_outcomes(passed=2)
    files = baseline_files(pytester.path)
    assert [p.relative_to(pytester.path / "baselines").parts[1:] for p in files] == [
        ("a", "model", "test_accuracy.json"), ("b", "model", "test_accuracy.json")]
    # each judged against its own: the 0.5 one would fail against the 0.9 one's baseline
    pytester.runpytest("--import-mode=importlib", f"{OPT_MISSING}=fail").assert_outcomes(passed=2)


def test_ids_that_clean_to_one_name_get_files_of_their_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_toy="""
        import pytest
        from pytest_accel.metrics import Metric

        @pytest.mark.parametrize("value", [0.5, 0.7, 0.9], ids=["resnet/50", "resnet 50", "resnet:50"])
        def test_acc(accel, value):
            accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"))
    """)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=3)
    names = [p.name for p in baseline_files(pytester.path)]
    assert len(set(names)) == 3, names
    assert all(name.startswith("test_acc-resnet_50-") for name in names), names
    pytester.runpytest(f"{OPT_MISSING}=fail").assert_outcomes(passed=3)


def test_a_long_id_is_shortened_with_its_hash(pytester: pytest.Pytester) -> None:
    long_ids = ["x" * 300 + "1", "x" * 300 + "2"]
    pytester.makepyfile(test_toy=f"""
        import pytest
        from pytest_accel.metrics import Metric

        @pytest.mark.parametrize("value", [0.5, 0.9], ids={long_ids!r})
        def test_acc(accel, value):
            accel.check(Metric("toy.accuracy", value, "", "accuracy", "higher"))
    """)
    pytester.runpytest(f"{OPT_MISSING}=record").assert_outcomes(passed=2)
    names = [p.name for p in baseline_files(pytester.path)]
    assert len(set(names)) == 2 and all(len(name) <= MAX_FILE_STEM + 16 for name in names), names


def test_file_stem_keeps_clean_names_and_tells_changed_ones_apart() -> None:
    assert file_stem("test_latency-fp32") == "test_latency-fp32"
    assert file_stem("test_acc@yolo11n_coco_640") == "test_acc@yolo11n_coco_640"
    changed = {file_stem(text) for text in ("resnet/50", "resnet 50", "resnet:50", "resnet_50")}
    assert len(changed) == 4


TWIN_BACKEND = """
from accel_hostblas import HostBlasBackend, HostBlasDevice

class TwinBackend(HostBlasBackend):
    name = "twin"
    grammar = "twin:<name>"

    def parse(self, spec):
        return spec if spec.startswith("twin:") else None

    def discover(self):
        return []

    def open(self, spec):
        return HostBlasDevice(spec, self.name)  # 'twin:a' and 'twin:b' share the key prefix 'twin'

def pytest_accel_register_backends(registry):
    registry.register(TwinBackend())
"""


def test_two_devices_with_one_key_read_one_file_but_never_both_write_it(pytester: pytest.Pytester) -> None:
    from tests.test_extension import BACKEND_MODULE

    pytester.makepyfile(accel_hostblas=BACKEND_MODULE, test_toy=TEST_MODEL.format(value=0.9))
    pytester.makeconftest(TWIN_BACKEND)
    result = pytester.runpytest(f"{OPT_DEVICE}=twin:a", f"{OPT_DEVICE}=twin:b", f"{OPT_MISSING}=record")
    result.assert_outcomes(passed=1, errors=1)  # the second one stops in its set-up, before measuring
    assert "During handling" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*baseline file */toy/test_accuracy.json belongs to every device of one key, and "
                                 "this run would write it from both twin:a and twin:b; record or update baselines "
                                 f"with one device of a key ({OPT_DEVICE}=twin:a)*"])
    recorded = pytester.runpytest(f"{OPT_DEVICE}=twin:a", f"{OPT_MISSING}=record")
    recorded.assert_outcomes(passed=1)
    checked = pytester.runpytest(f"{OPT_DEVICE}=twin:a", f"{OPT_DEVICE}=twin:b", f"{OPT_MISSING}=fail")
    checked.assert_outcomes(passed=2)  # both judged against their model's one baseline
