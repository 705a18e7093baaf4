"""Run the README's main command once and write what the README shows and quotes from it, under docs/sample/.

    python tools/readme_sample.py

runs, from the checkout's root and with this interpreter, exactly the README's suites command (:data:`SUITES_ARGS`)
plus ``--accel-report=<a temporary folder>/report.json``, streams its output, and when pytest exits 0 writes:

``docs/sample/main-output.txt``
    everything the run printed (stdout and stderr, as a terminal receives them), with three machine-specific
    paths replaced so that reruns differ only where the run did: the temporary folder by ``<tmp>``, this
    checkout's root by ``<checkout>``, the home folder by ``~``.
``docs/sample/main-summary.txt``
    the part of it the README shows (:func:`excerpt`): pytest-accel's summary to the end of the output, shortened
    in the middle to at most :data:`EXCERPT_MAX_LINES` lines.
``docs/sample/facts.json``
    ``run``: the figures read from the output and the report (wall time, outcome counts, the host CPU and its load
    average, the date, the commit, per device the detector's fp32 model latency, mAP50-95 and head relative L2
    error); ``quote``: each figure as the README and the pages under docs/ write it (:func:`quotes`).

The README includes ``main-summary.txt`` verbatim between ``<!-- sample:begin -->`` and ``<!-- sample:end -->`` (in
a code fence); it and the pages under docs/ quote a figure as ``<!-- fact:NAME -->TEXT<!-- /fact -->``, where TEXT
is ``quote[NAME]`` (the comments do not show on a rendered page). The script rewrites both in those pages
(:func:`rewritten_pages`), and ``tests/test_readme.py`` fails when they differ from these files: after the output or the
suites change, rerun the script and commit what it changed.

A run that does not exit 0 (a regression, a busy machine's failed check) writes nothing: the files keep the last
passing run, and the script exits with pytest's status.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "docs" / "sample"
OUTPUT_FILE = SAMPLE_DIR / "main-output.txt"
SUMMARY_FILE = SAMPLE_DIR / "main-summary.txt"
FACTS_FILE = SAMPLE_DIR / "facts.json"

#: the README's main command after ``.venv/bin/pytest`` (tests/test_readme.py holds the README to it)
SUITES_ARGS = ("suites", "--device=cpu", "--device=ort:cpu", "--device=ov:CPU")

#: the first line of pytest-accel's terminal summary: ``===...=== pytest-accel ===...===``
SUMMARY_START = re.compile(r"^=+ pytest-accel =+$")
#: pytest's last line: ``=== 49 passed, 53 skipped in 238.76s (0:03:58) ===``
FINAL_LINE = re.compile(r"^=+ (?P<counts>.+) in (?P<seconds>[0-9.]+)s(?: \([0-9:]+\))? =+$")
EXCERPT_MAX_LINES = 52
#: lines kept from the end when the summary is shortened (what needs attention, pytest's outcome line)
EXCERPT_TAIL_LINES = 12
ELISION = "  ..."

README = ROOT / "README.md"
SAMPLE_BEGIN, SAMPLE_END = "<!-- sample:begin -->", "<!-- sample:end -->"
#: a quoted figure: ``<!-- fact:NAME -->TEXT<!-- /fact -->``
FACT = re.compile(r"<!-- fact:(?P<name>[^ ]+?) -->(?P<text>.*?)<!-- /fact -->", re.DOTALL)

#: the detector's fp32 figures quoted per device: (test function, metric, fact name prefix)
DETECTOR_FIGURES = (
    ("test_latency_model_only", "detection.model.latency", "model_latency_ms"),
    ("test_accuracy", "detection.map50_95", "map50_95"),
    ("test_parity", "detection.head_rel_l2_error", "head_rel_l2_error"),
)


def command(report: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", *SUITES_ARGS, f"--accel-report={report}"]


def run_environment() -> dict[str, str]:
    """The caller's environment without what would change the output from run to run or user to user: a fixed
    terminal width, no colour, no extra pytest arguments; unbuffered, so that stdout and stderr interleave as on a
    terminal."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTEST_ADDOPTS", "FORCE_COLOR", "PY_COLORS", "NO_COLOR")}
    env["COLUMNS"] = "80"
    env["PY_COLORS"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def normalise(text: str, tmp: Path) -> str:
    for path, token in ((tmp, "<tmp>"), (ROOT, "<checkout>"), (Path.home(), "~")):
        text = text.replace(str(path), token)
    return text


def excerpt(output: str) -> str:
    """pytest-accel's summary to the end of ``output``; past :data:`EXCERPT_MAX_LINES` lines its middle is replaced
    by :data:`ELISION`. Without a summary header, the last lines of the output."""
    lines = output.rstrip("\n").split("\n")
    start = next((i for i, line in enumerate(lines) if SUMMARY_START.match(line)), None)
    part = lines[start:] if start is not None else lines[-EXCERPT_MAX_LINES:]
    if len(part) > EXCERPT_MAX_LINES:
        head = EXCERPT_MAX_LINES - EXCERPT_TAIL_LINES - 1
        part = [*part[:head], ELISION, *part[-EXCERPT_TAIL_LINES:]]
    return "\n".join(part) + "\n"


def outcome(output: str) -> tuple[dict[str, int], float]:
    """The counts and the wall time of pytest's last line."""
    for line in reversed(output.rstrip("\n").split("\n")):
        match = FINAL_LINE.match(line)
        if match:
            counts = {}
            for part in match["counts"].split(", "):
                number, word = part.split(" ", 1)
                counts[word] = int(number)
            return counts, float(match["seconds"])
    raise SystemExit("readme_sample: pytest's last line (counts and time) is not in the output")


def run_facts(output: str, report: dict[str, Any], load: tuple[float, float]) -> dict[str, Any]:
    """The figures of the run; ``load``: the host's 1-minute load average when it started and when it ended (other
    work beside the run slows it)."""
    counts, seconds = outcome(output)
    devices = report["devices"]
    host = devices[SUITES_ARGS[1].split("=", 1)[1]]  # the `cpu` device describes the host CPU
    facts: dict[str, Any] = {
        "date": report["created_at"][:10],
        "git_commit": report["git_commit"],
        "pytest_accel": report["pytest_accel"],
        "cpu": {"vendor": host["vendor"], "model": host["model"], "cores": host["cores"]},
        "wall_s": seconds,
        "load_average_1m": {"start": round(load[0], 2), "end": round(load[1], 2)},
        "outcomes": counts,
        "devices": {spec: {"key": info["key"]} for spec, info in devices.items()},
    }
    for result in report["results"]:
        if result["suite"] != "detection" or "fp32" not in result["params"].split("-"):
            continue
        for function, metric_name, fact in DETECTOR_FIGURES:
            if result["function"] != function:
                continue
            for metric in result["metrics"]:
                if metric["name"] == metric_name and metric["value"] is not None:
                    value = metric["value"] * 1000 if fact.endswith("_ms") else metric["value"]
                    facts["devices"][result["device"]][fact] = value
    return facts


def minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def quotes(facts: dict[str, Any]) -> dict[str, str]:
    """Each figure as the README writes it, by fact name."""
    cpu = facts["cpu"]
    quoted = {
        "date": facts["date"],
        "commit": facts["git_commit"][:7],
        "cpu": f"{cpu['vendor']} {cpu['model']}, {cpu['cores']} cores",
        "wall": minutes(facts["wall_s"]),
        "passed": str(facts["outcomes"].get("passed", 0)),
        "skipped": str(facts["outcomes"].get("skipped", 0)),
        "load_average": f"{facts['load_average_1m']['start']:.1f} at its start, {facts['load_average_1m']['end']:.1f} "
                        "at its end",
    }
    for spec, figures in facts["devices"].items():
        if "model_latency_ms" in figures:
            quoted[f"model_latency_ms[{spec}]"] = f"{figures['model_latency_ms']:.1f} ms"
        if "map50_95" in figures:
            quoted[f"map50_95[{spec}]"] = f"{figures['map50_95']:.4g}"
        if "head_rel_l2_error" in figures:
            quoted[f"head_rel_l2_error[{spec}]"] = f"{figures['head_rel_l2_error']:.2g}"
    return quoted


def pages() -> list[Path]:
    """The pages that may show the sample or quote figures."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def sample_block(summary: str) -> str:
    """What stands between the sample markers."""
    return f"\n```\n{summary}```\n"


def rewritten_pages(summary: str, quoted: dict[str, str]) -> dict[Path, str]:
    """Each page whose text changes with the summary between the README's sample markers and each figure in its
    quote, with its new text. A page that quotes a figure the facts lack stops the script, naming it."""
    rewritten = {}
    for page in pages():
        text = page.read_text(encoding="utf-8")
        unknown = sorted({match["name"] for match in FACT.finditer(text)} - set(quoted))
        if unknown:
            raise SystemExit(f"readme_sample: {page.relative_to(ROOT)} quotes figures the run has not: {unknown}")
        new = FACT.sub(lambda match: f"<!-- fact:{match['name']} -->{quoted[match['name']]}<!-- /fact -->", text)
        if page == README:
            before, rest = new.split(SAMPLE_BEGIN, 1)
            new = before + SAMPLE_BEGIN + sample_block(summary) + SAMPLE_END + rest.split(SAMPLE_END, 1)[1]
        if new != text:
            rewritten[page] = new
    return rewritten


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="readme-sample-") as folder:
        tmp = Path(folder)
        report_path = tmp / "report.json"
        argv = command(report_path)
        print("readme_sample: running", " ".join(argv[2:]), flush=True)
        started, load_at_start = time.monotonic(), os.getloadavg()[0]
        process = subprocess.Popen(argv, cwd=ROOT, env=run_environment(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace")
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            sys.stdout.write(line)
            printed.append(line)
        status = process.wait()
        load = (load_at_start, os.getloadavg()[0])
        print(f"readme_sample: pytest exited {status} after {time.monotonic() - started:.0f} s", flush=True)
        if status != 0:
            print("readme_sample: not a passing run; docs/sample/ left as it was", file=sys.stderr)
            return status
        output = normalise("".join(printed), tmp)
        report = json.loads(report_path.read_text(encoding="utf-8"))
    facts = run_facts(output, report, load)
    quoted, summary = quotes(facts), excerpt(output)
    rewritten = rewritten_pages(summary, quoted)
    SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    OUTPUT_FILE.write_text(output, encoding="utf-8")
    SUMMARY_FILE.write_text(summary, encoding="utf-8")
    FACTS_FILE.write_text(json.dumps({"run": facts, "quote": quoted}, indent=2, sort_keys=True) + "\n",
                          encoding="utf-8")
    for page, text in rewritten.items():
        page.write_text(text, encoding="utf-8")
    for path in (OUTPUT_FILE, SUMMARY_FILE, FACTS_FILE, *rewritten):
        print(f"readme_sample: wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
