"""The datasheet table, the host CPU's peak estimate, shares of peak, the roofline and the per-joule and per-dollar
figures: the shipped table loads and every value has a source, the most specific entry matches, users override
entries, bad files fail naming the value, the estimate follows the instruction sets and says where its clock came
from, and a manifest's floor on a share of peak passes or fails the test and shows in the scorecard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_accel.datasheet import SHIPPED, Datasheet, DatasheetError, load_file
from pytest_accel.datasheet.cpu import CLOCK_ENV, Clock, dmi_bandwidth, estimate, host_clock
from pytest_accel.datasheet.measured import WorkCount, roofline_metric, share_metric, value_metrics
from pytest_accel.datasheet.peaks import DevicePeak
from pytest_accel.options import OPT_DEVICE, OPT_REPORT
from pytest_accel.report.roofline import rooflines

SOURCE = """
schema = 1
[sources.lab-sheet]
title = "Lab price list"
publisher = "Our lab"
url = "https://example.invalid/prices"
date = "2026-11"
"""


def _write(tmp_path: Path, body: str, name: str = "ours.toml") -> Path:
    path = tmp_path / name
    path.write_text(SOURCE + body)
    return path


def test_the_shipped_table_loads_and_every_value_names_a_source_with_a_date() -> None:
    specs = load_file(SHIPPED)
    assert len(specs) >= 15
    for spec in specs:
        for precision in spec.peak_tflops:
            source = spec.source_of(f"peak_tflops.{precision}")
            assert source.url.startswith("http") and source.date, (spec.id, precision)
        for name in spec.values:
            assert spec.source_of(name).title, (spec.id, name)


@pytest.mark.parametrize(("reported", "expected"), [
    ("NVIDIA H100 80GB HBM3", "nvidia-h100-sxm"),
    ("NVIDIA H100 PCIe", "nvidia-h100-pcie"),
    ("NVIDIA H100 NVL", "nvidia-h100-nvl"),
    ("NVIDIA H200", "nvidia-h200-sxm"),
    ("NVIDIA GeForce RTX 5090", "nvidia-geforce-rtx-5090"),
    ("AMD Instinct MI300X", "amd-instinct-mi300x"),
    ("NVIDIA GeForce RTX 5090 D", None),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", None),
    ("AMD EPYC", None),
])
def test_a_device_matches_the_most_specific_entry_by_the_name_its_backend_reports(reported: str,
                                                                                   expected: str | None) -> None:
    spec = Datasheet.load().lookup(reported)
    assert (spec.id if spec else None) == expected


def test_a_users_file_adds_entries_and_replaces_a_shipped_one_with_the_same_id(tmp_path: Path) -> None:
    ours = _write(tmp_path, """
[[accelerator]]
id = "nvidia-h100-sxm"
vendor = "NVIDIA"
model = "H100 SXM (our clocks)"
match = ['H100 80GB HBM3']
peak_tflops = { bf16 = 900.0 }
list_price_usd = 25000
sources = { peak_tflops = "lab-sheet", list_price_usd = "lab-sheet" }

[[accelerator]]
id = "our-npu"
vendor = "Ours"
model = "NPU 1"
kind = "npu"
match = ['Ours NPU']
peak_tflops = { int8 = 50 }
sources = { peak_tflops = "lab-sheet" }
""")
    table = Datasheet.load([ours])
    h100 = table.lookup("NVIDIA H100 80GB HBM3")
    assert h100 is not None and h100.peak_tflops == {"bf16": 900.0} and h100.values["list_price_usd"] == 25000
    assert h100.source_of("list_price_usd").publisher == "Our lab"
    npu = table.lookup("Ours NPU rev B")
    assert npu is not None and npu.peak_tflops["int8"] == 50


@pytest.mark.parametrize(("body", "says"), [
    ("[[accelerator]]\nid='x'\nvendor='V'\nmodel='M'\nmatch=['M']\npeak_tflops={fp9=1}\nsources={peak_tflops='lab-sheet'}",
     "unknown precision(s) fp9"),
    ("[[accelerator]]\nid='x'\nvendor='V'\nmodel='M'\nmatch=['M']\ntdp_w=300", "no source for tdp_w"),
    ("[[accelerator]]\nid='x'\nvendor='V'\nmodel='M'\nmatch=['(']", "is no regular expression"),
    ("[[accelerator]]\nid='x'\nvendor='V'\nmodel='M'\nmatch=['M']\ntdp_w=-5\nsources={tdp_w='lab-sheet'}",
     "tdp_w = -5: expected a number above 0"),
    ("[[accelerator]]\nid='x'\nvendor='V'\nmodel='M'\nmatch=['M']\ntdp_w=5\nsources={tdp_w='nowhere'}",
     "'nowhere' is not defined under [sources]"),
    ("[[accelerator]]\nid='X Y'\nvendor='V'\nmodel='M'\nmatch=['M']", "id is required"),
])
def test_a_bad_datasheet_file_fails_naming_the_file_the_entry_and_the_value(tmp_path: Path, body: str,
                                                                            says: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(DatasheetError) as failure:
        load_file(path)
    assert says in str(failure.value) and str(path) in str(failure.value)


ZEN4 = {"fma", "avx", "avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
SAPPHIRE_RAPIDS = ZEN4 | {"avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"}


@pytest.mark.parametrize(("vendor", "family", "flags", "expected"), [
    # Zen 4: AVX-512 on 256-bit paths, 2 FMA pipes: 32 fp32 FLOPs a cycle; VDPBF16PS doubles it; no fp16 arithmetic
    ("AMD", 0x19, ZEN4, {"fp32": 32, "bf16": 64, "fp16": 32, "int8": 128}),
    # Sapphire Rapids: full 512-bit paths; AMX tiles for bf16 and int8, AVX512-FP16 for fp16
    ("Intel", 6, SAPPHIRE_RAPIDS, {"fp32": 64, "bf16": 1024, "fp16": 128, "int8": 2048}),
    ("Intel", 6, {"fma", "avx", "avx2"}, {"fp32": 32, "bf16": 32, "fp16": 32}),
])
def test_the_cpu_estimate_follows_the_instruction_sets(vendor: str, family: int, flags: set[str],
                                                       expected: dict[str, int]) -> None:
    peak = estimate(vendor, "X86_64", family, flags, 4, Clock(2.0, "test"))
    assert {p: peak.per_cycle[p] for p in expected} == expected
    assert math.isclose(peak.tflops("fp32") or 0, 4 * 2.0 * expected["fp32"] / 1e3)
    assert f"4 cores x 2 GHz x {expected['fp32']:g} fp32 ops/cycle" in peak.formula("fp32")
    assert "int8" not in peak.per_cycle or "int8" in expected


def test_the_clock_comes_from_the_user_else_the_kernels_maximum_else_the_model_name_else_the_current_one(
        tmp_path: Path) -> None:
    facts = {"brand_raw": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "hz_actual": (2_600_000_000, 0)}
    assert host_clock({CLOCK_ENV: "3.1"}, sys_root=tmp_path, facts=facts) == Clock(3.1, f"given ({CLOCK_ENV})")
    assert host_clock({}, sys_root=tmp_path, facts=facts, given_ghz=3.5).ghz == 3.5
    assert host_clock({}, sys_root=tmp_path, facts=facts).source.startswith("the model name")
    cpufreq = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
    cpufreq.mkdir(parents=True)
    (cpufreq / "cpuinfo_max_freq").write_text("3500000\n")
    assert host_clock({}, sys_root=tmp_path, facts=facts) == Clock(3.5, host_clock({}, sys_root=tmp_path,
                                                                                     facts=facts).source)
    current = host_clock({}, sys_root=tmp_path / "none",
                         facts={"brand_raw": "AMD EPYC", "hz_actual": (2_596_000_000, 0)})
    assert current.ghz == pytest.approx(2.596) and "reports now" in current.source
    with pytest.raises(ValueError, match=f"{CLOCK_ENV}='fast'"):
        host_clock({CLOCK_ENV: "fast"}, sys_root=tmp_path, facts=facts)


DMIDECODE = """Handle 0x0010, DMI type 17, 92 bytes
Memory Device
\tSize: 32 GB
\tData Width: 64 bits
\tSpeed: 4800 MT/s
\tConfigured Memory Speed: 4400 MT/s

Handle 0x0011, DMI type 17, 92 bytes
Memory Device
\tSize: No Module Installed
\tData Width: Unknown

Handle 0x0012, DMI type 17, 92 bytes
Memory Device
\tSize: 32 GB
\tData Width: 64 bits
\tConfigured Memory Speed: 4400 MT/s
"""


def test_memory_bandwidth_is_read_from_the_modules_the_host_lists_or_said_to_be_unreadable() -> None:
    bandwidth = dmi_bandwidth(DMIDECODE)
    assert bandwidth is not None and bandwidth[0] == pytest.approx(2 * 4400 * 8 / 1e3)
    assert "2 memory module" in bandwidth[1]
    assert dmi_bandwidth("no modules here") is None


def test_shares_rooflines_and_value_figures_carry_what_they_were_divided_by_and_its_source(tmp_path: Path) -> None:
    spec = Datasheet.load([_write(tmp_path, """
[[accelerator]]
id = "our-gpu"
vendor = "Ours"
model = "GPU"
match = ['Ours GPU']
peak_tflops = { fp32 = 10.0 }
memory_bandwidth_gbs = 1000
tdp_w = 250
list_price_usd = 5000
sources.peak_tflops = "lab-sheet"
sources.memory_bandwidth_gbs = "lab-sheet"
sources.tdp_w = "lab-sheet"
sources.list_price_usd = "lab-sheet"
""")], shipped=None).lookup("Ours GPU")
    peak = DevicePeak("Ours GPU", spec=spec)
    share = share_metric("ceiling.matmul.fp32", 6e12, peak, "fp32")
    assert share is not None and share.value == pytest.approx(0.6) and share.kind == "share"
    assert "Lab price list" in share.summary["peak_source"]
    assert share_metric("x", 1e12, peak, "bf16") is None  # the table gives no bf16 peak: no share, never a guess
    # 2 GFLOP over 20 MB: 100 FLOP/B, above the ridge (10 TFLOPS / 1 TB/s = 10 FLOP/B): compute-bound
    placed = roofline_metric("toy.model", WorkCount(2_000_000_000, 20_000_000, "t", "t"), 0.001, peak, "fp32")
    assert placed.value == pytest.approx(2.0) and placed.summary["bound"] == "compute"
    assert placed.summary["share_of_attainable"] == pytest.approx(0.2)
    value = {m.name: m for m in value_metrics("toy.offline", 500.0, peak, hourly_price_usd=2.0)}
    assert value["toy.offline.inferences_per_joule_tdp_estimate"].value == pytest.approx(2.0)
    assert "not measured" in value["toy.offline.inferences_per_joule_tdp_estimate"].summary["estimate"]
    assert value["toy.offline.inferences_per_s_per_kusd"].value == pytest.approx(100.0)
    assert value["toy.offline.usd_per_million"].value == pytest.approx(2.0 / (500 * 3600) * 1e6)
    metered = value_metrics("toy.offline", 500.0, peak, has_energy_meter=True)
    assert all("tdp" not in m.name for m in metered)  # a meter's figure comes from the energy test
    assert all(m.kind in ("info", "share") for m in [*value.values(), placed])


FLOOR_TESTS = """
from pytest_accel.datasheet.measured import share_metric

def test_matmul_share(accel):
    accel.check(share_metric("ceiling.matmul.bf16", 0.5e12, accel.peak, "bf16"))
"""

EVERY_DEVICE = """
[[accelerator]]
id = "any-cpu"
vendor = "Test"
model = "any host"
kind = "cpu"
match = ['.']
peak_tflops = { bf16 = 1.0 }
sources = { peak_tflops = "lab-sheet" }
"""


@pytest.mark.parametrize(("floor", "outcome"), [(0.6, "failed"), (0.4, "passed")])
def test_a_manifests_floor_on_a_share_of_peak_gates_the_test_and_shows_in_the_scorecard(
        pytester: pytest.Pytester, floor: float, outcome: str) -> None:
    pytester.makepyfile(test_floor=FLOOR_TESTS)
    _write(pytester.path, EVERY_DEVICE, "sheet.toml")
    (pytester.path / "manifest.toml").write_text(f'[floors]\n"ceiling.matmul.bf16.share_of_peak" = {floor}\n')
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-datasheet=sheet.toml", "--accel-manifest=manifest.toml",
                                "--accel-scorecard=cards", f"{OPT_REPORT}=report.json")
    result.assert_outcomes(**{outcome: 1})
    card = next((pytester.path / "cards").glob("*.md")).read_text()
    assert "## Against the datasheet" in card and "50.0%" in card and f"{floor:g}" in card
    assert "datasheet entry 'any-cpu'" in card and "Lab price list" in card
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["datasheet"]["cpu"]["origin"].startswith("datasheet entry 'any-cpu'")
    shares = rooflines(report)["cpu"].shares
    assert shares[0]["share"] == pytest.approx(0.5) and shares[0]["floor"] == floor


def test_without_a_floor_a_share_is_reported_only_and_a_bad_floor_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_floor=FLOOR_TESTS)
    _write(pytester.path, EVERY_DEVICE, "sheet.toml")
    pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-datasheet=sheet.toml").assert_outcomes(passed=1)
    (pytester.path / "manifest.toml").write_text('[floors]\n"ceiling.matmul.bf16.share_of_peak" = 60\n')
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-datasheet=sheet.toml", "--accel-manifest=manifest.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*[[]floors[]]: ceiling.matmul.bf16.share_of_peak=60: expected a share*"])
    (pytester.path / "bad.toml").write_text("schema = 2\n")
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-datasheet=bad.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*bad.toml*schema = 2: this pytest-accel reads schema = 1*"])


def test_the_host_cpu_without_an_entry_gets_its_estimate_with_formula_and_clock_source(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_floor=FLOOR_TESTS.replace("bf16", "fp32"))
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", f"{OPT_REPORT}=report.json")
    result.assert_outcomes(passed=1)
    entry = json.loads((pytester.path / "report.json").read_text())["datasheet"]["cpu"]
    assert entry["estimated"] and entry["origin"] == "estimate from the host CPU's instruction sets"
    assert "fp32 ops/cycle" in entry["estimate"]["formulas"]["fp32"] and entry["estimate"]["clock_source"]


ROOFLINE_TESTS = """
from pytest_accel.datasheet.measured import WorkCount, roofline_metric, share_metric
from pytest_accel.metrics import Metric

def test_ceilings(accel):
    accel.check(Metric("ceiling.matmul.fp32.tflops", 0.6, "TFLOP/s", "info", "higher", sections=("ceiling",)),
                Metric("ceiling.stream.triad.gbs", 40.0, "GB/s", "info", "higher", sections=("ceiling",)),
                share_metric("ceiling.matmul.fp32", 0.6e12, accel.peak, "fp32"))

def test_model(accel):
    # 4 GFLOP over 400 MB: 10 FLOP/B, below the ridge of 1 TFLOPS over the measured 40 GB/s (25 FLOP/B)
    accel.check(roofline_metric("toy.model", WorkCount(4_000_000_000, 400_000_000, "t", "t"), 0.02, accel.peak,
                                "fp32"))
"""


def test_the_report_places_workloads_on_each_devices_roofline_and_draws_it(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_roof=ROOFLINE_TESTS)
    _write(pytester.path, EVERY_DEVICE.replace("bf16 = 1.0", "fp32 = 1.0"), "sheet.toml")
    result = pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-datasheet=sheet.toml", f"{OPT_REPORT}=report.json",
                                "--accel-html=report.html")
    result.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "report.json").read_text())
    line = rooflines(report)["cpu"]
    assert line.matmul == {"fp32": 0.6} and line.stream == {"triad": 40.0}
    placed = line.to_dict()["placed"][0]
    assert placed["bound"] == "memory" and placed["bandwidth_source"].startswith("measured (STREAM triad")
    assert placed["roof_tflops"] == pytest.approx(0.4) and placed["share_of_roof"] == pytest.approx(0.5)
    page = (pytester.path / "report.html").read_text()
    assert "cpu: roofline" in page and "the bandwidth roof is measured (STREAM triad" in page


def test_the_fleet_report_puts_each_systems_datasheet_beside_what_it_measured(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_accel.cli import main

    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_roof=ROOFLINE_TESTS.replace('"toy.model"', '"detection.model"'))
    _write(pytester.path, EVERY_DEVICE.replace("bf16 = 1.0", "fp32 = 1.0"), "sheet.toml")
    for machine in ("alpha", "beta"):
        monkeypatch.setenv("PYTEST_ACCEL_MACHINE", machine)
        pytester.runpytest(f"{OPT_DEVICE}=cpu", "--accel-datasheet=sheet.toml",
                           f"{OPT_REPORT}=reports/{machine}.json").assert_outcomes(passed=2)
    out = pytester.path / "fleet"
    assert main(["report", str(pytester.path / "reports"), "-o", str(out)]) == 0
    text = (out / "fleet.md").read_text()
    assert "### Against the datasheet" in text
    rows = json.loads((out / "fleet.json").read_text())["against_datasheet"]
    assert [row["system"] for row in rows] == ["alpha/cpu", "beta/cpu"]
    assert rows[0]["matmul ceiling"] == "fp32 0.6 TFLOPS (60%)" and "memory-bound, 50% of the roof" in \
        rows[0]["detector on the roofline"]
    assert "alpha/cpu: roofline" in (out / "fleet.html").read_text()
