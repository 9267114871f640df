"""`sdd-tui report`: one self-contained page of the four findings, opened in a real browser (headless Chromium,
driven over the DevTools protocol on a pipe: no port, no network), in Markdown, from the CLI and from the app."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdd_tui.cli import app as cli
from sdd_tui.core.history.store import Store

FAST = ("train.epochs=1",)  # smoke: 3 rounds of a tiny MLP; one epoch a round is enough for every section
SWEEP_GRID = {"noise.rate": ["0.2", "0.4"]}
SWEEP_SEEDS = [0, 1, 2]


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _run(run_experiment, home: Path, *overrides: str, **kwargs) -> str:
    from sdd_tui.core.config import resolve_config

    run_id, status, _ = run_experiment(resolve_config("smoke", overrides=[*FAST, *overrides]), home, preset="smoke",
                                       **kwargs)
    assert status == "finished"
    return run_id


@pytest.fixture(scope="module")
def lab(tmp_path_factory, run_experiment):
    """A home of ten smoke runs: two seeds with a reinit branch, another setting with a random-prune branch and a
    re-dense analysis, one without learning distance, and a sweep of noise.rate=0.2,0.4 x 3 seeds."""
    from sdd_tui.core.sweeps.sweep import MemberRecorder, expand_sweep, member_config, new_sweep_record

    home = tmp_path_factory.mktemp("report") / "home"
    ids = {"seeds": [_run(run_experiment, home, f"runtime.seed={seed}", "retrain.compare_reinit=true")
                     for seed in (0, 1)]}
    ids["other"] = _run(run_experiment, home, "noise.rate=0.4")
    ids["no_distance"] = _run(run_experiment, home, "analysis.learning_distance=false", "runtime.seed=5")
    assert invoke("branch", ids["other"], "random-prune", "--home", home).exit_code == 0
    analysed = invoke("analyze", ids["other"], "--redense", "--rounds", "1,3", "--epochs", "1", "--interp-steps", "6",
                      "--home", home)
    assert analysed.exit_code == 0, analysed.output
    store = Store(home)
    members = expand_sweep("smoke", None, list(FAST), SWEEP_SEEDS, SWEEP_GRID)
    sweep = new_sweep_record(members, "smoke", None, list(FAST), SWEEP_SEEDS, SWEEP_GRID, "local")
    store.create_sweep(sweep)
    for member in members:
        run_experiment(member_config(member), home, preset="smoke", run_id=member["run_id"],
                       recorder=MemberRecorder(store, sweep["id"]))
    ids["sweep"] = sweep["id"]
    ids["members"] = [m["run_id"] for m in members]
    return home, ids


# ---------------------------------------------------------------------------- a real browser


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("Chromium is not installed (`apt-get install chromium`; .ci/run installs it where apt-get works)")
    return found


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4): it loads one page with
    every HTTP(S) request sent to a dead proxy, and records the events it sends meanwhile."""

    def __init__(self, binary: str, width: int = 1200, height: int = 2400, limit_s: float = 60.0):
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        to_browser, self.commands = os.pipe()
        self.answers, from_browser = os.pipe()

        def plumbing() -> None:  # the protocol's pipe: Chromium reads fd 3 and writes fd 4
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             f"--user-data-dir={self.profile}", "--proxy-server=127.0.0.1:9", f"--window-size={width},{height}",
             "--hide-scrollbars"], pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=plumbing)  # noqa: PLW1509 (the fds must be 3 and 4 in the child; pass_fds cannot renumber)
        os.close(to_browser)
        os.close(from_browser)
        self.deadline = time.monotonic() + limit_s
        self.buffer, self.events, self.next_id = b"", [], 0

    def receive(self) -> dict:
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.answers], [], [], max(self.deadline - time.monotonic(), 0))
            if not ready:
                raise AssertionError("Chromium did not answer in time")
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise AssertionError(f"Chromium closed its pipe: {self.process.stderr.read().decode()[-2000:]}")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self.receive()
            if answer.get("id") == self.next_id:
                assert "error" not in answer, f"{method}: {answer['error']}"
                return answer.get("result", {})
            self.events.append(answer)

    def open(self, page: Path) -> bytes:
        """Load `page`, wait for its load event, and return a PNG screenshot of the window."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session)
        self.call("Page.navigate", session, url=page.resolve().as_uri())
        while not any(event.get("method") == "Page.loadEventFired" for event in self.events):
            self.events.append(self.receive())
        return base64.b64decode(self.call("Page.captureScreenshot", session, format="png")["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            os.close(self.commands)
            os.close(self.answers)
            shutil.rmtree(self.profile, ignore_errors=True)

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (a failed load is one)."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(f"console: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return found


def load_in_chromium(page: Path) -> tuple[list[str], list[str], bytes]:
    browser = Browser(chromium_binary())
    try:
        screenshot = browser.open(page)
    finally:
        browser.close()
    return browser.requests(), browser.errors(), screenshot


def colours(png: bytes) -> int:
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(png), format="png")[..., :3].reshape(-1, 3)
    return len({tuple(p) for p in (pixels * 255).round().astype(int).tolist()})


def test_the_browser_check_catches_a_page_that_fetches_and_fails(tmp_path):
    """The harness itself: an external image, a console error and an exception are all seen."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="https://example.com/x.png"><script>console.error("boom"); '
                    'notDefined();</script>text</body></html>', encoding="utf-8")
    requests, errors, _ = load_in_chromium(page)
    assert "https://example.com/x.png" in requests
    assert any("boom" in e for e in errors) and any(e.startswith("exception") for e in errors)
    assert any("ERR_PROXY" in e for e in errors)


@pytest.mark.slow
def test_a_report_of_ten_runs_opens_offline_without_errors_and_is_not_blank(lab, tmp_path):
    home, ids = lab
    page = tmp_path / "report.html"
    started, cpu = time.perf_counter(), time.process_time()
    result = invoke("report", *ids["seeds"], ids["other"], ids["no_distance"], "--sweep", ids["sweep"], "-o", page,
                    "--home", home)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.exit_code == 0, result.output
    assert "(10 runs," in result.output
    load = os.getloadavg()[0]  # on a shared machine the wall time follows the load; the CPU time much less
    print(f"\nbenchmark: report of 10 runs written in {seconds:.1f} s ({cpu:.1f} s of CPU, load average {load:.1f} "
          f"on {os.cpu_count()} cores; {page.stat().st_size / 1e6:.1f} MB)")
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text), "the page names a web address"
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b|\bsrc=|@import|url\(\s*['\"]?(?!#)", text)
    assert text.count("<svg") >= 4  # double descent, learning distance, tickets, flatness: inline
    requests, errors, screenshot = load_in_chromium(page)
    assert requests == [page.resolve().as_uri()], requests  # the page itself, nothing else
    assert errors == []
    (tmp_path / "report.png").write_bytes(screenshot)
    assert colours(screenshot) > 200, "the screenshot is (nearly) blank"


# ---------------------------------------------------------------------------- what the page says


def report_text(home: Path, tmp_path: Path, *args: str) -> str:
    page = tmp_path / "r.html"
    result = invoke("report", *args, "-o", page, "--home", home)
    assert result.exit_code == 0, result.output
    return page.read_text(encoding="utf-8")


def test_the_four_findings_with_what_was_measured(lab, tmp_path):
    home, ids = lab
    text = report_text(home, tmp_path, *ids["seeds"], ids["other"])
    for heading in ("1. Sparse double descent", "2. Learning distance", "3. Minima flatness",
                    "4. Winning tickets may not always win", "Settings", "Provenance", "Reproduce"):
        assert f">{heading}</h2>" in text
    assert "smoke (2 seeds: 0, 1)" in text and "(n=2)" in text  # seeds grouped as plot groups them
    assert "no reference for this setting" in text  # synthetic data is not one of the paper's settings
    assert "Spearman rho" in text and ">all rounds<" in text
    assert re.search(r"the reinit beats the ticket at \d+ of 3 rounds|the ticket wins or ties at all 3 rounds", text)
    assert "1 epoch(s) at lr" in text and "6 points" in text  # the re-dense settings named
    assert "<td>noise.rate</td><td>0.2</td><td>0.4</td>" in text  # the field that differs between the groups


def test_missing_pieces_say_how_to_add_them(lab, tmp_path):
    home, ids = lab
    text = report_text(home, tmp_path, ids["no_distance"])
    run_id = ids["no_distance"]
    assert "No round recorded a learning distance" in text
    assert f"sdd-tui analyze {run_id} --redense --rounds" in text
    assert f"sdd-tui branch {run_id} reinit" in text and f"sdd-tui branch {run_id} random-prune" in text
    assert f"sdd-tui --from-run {run_id}" in text


def test_a_sweep_is_grouped_by_its_grid(lab, tmp_path):
    home, ids = lab
    text = report_text(home, tmp_path, "--sweep", ids["sweep"])
    for rate in ("0.2", "0.4"):
        group = f"G{1 if rate == '0.2' else 2}"
        assert f"<td>{group}</td><td>{group} smoke noise.rate={rate} (3 seeds: 0, 1, 2)</td><td>noise.rate={rate}</td><td>3</td>" in text
    assert "(n=3)" in text and "<td>G3</td>" not in text
    assert "sdd-tui sweep --preset smoke --set train.epochs=1 --grid noise.rate=0.2,0.4 --seeds 0,1,2" in text
    assert "<td>noise.rate</td><td>0.2</td><td>0.4</td>" in text


def test_the_reproduce_command_gives_back_the_runs_config(lab):
    from sdd_tui.core.analysis.report_sections import preset_command
    from sdd_tui.core.config import resolve_config
    from sdd_tui.core.history.grouping import experiment_fields

    home, ids = lab
    record = Store(home).run(ids["seeds"][1])
    words = preset_command(record)
    assert words[:3] == ["sdd-tui", "--preset", "smoke"] and "runtime.seed=1" in words
    again = resolve_config("smoke", overrides=words[4::2])
    assert experiment_fields(again.model_dump(mode="json")) == experiment_fields(record.config)


def test_markdown_writes_its_figures_into_a_folder(lab, tmp_path):
    home, ids = lab
    page = tmp_path / "out" / "report.md"
    assert invoke("report", ids["other"], "-o", page, "--home", home).exit_code == 0
    text = page.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 3 and all((page.parent / link).is_file() for link in links)
    assert all(link.startswith("report_figures/") and link.endswith(".svg") for link in links)
    assert "## 1. Sparse double descent" in text and "| round |" in text


def test_user_mistakes_are_one_line_errors(lab, tmp_path):
    home, ids = lab
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    for args, expected in (((), "say which runs"), (("nosuchrun",), "no run 'nosuchrun'"),
                           ((ids["other"], "--format", "pdf"), "--format 'pdf'"),
                           (("--sweep", "sw-nope"), "no sweep")):
        result = invoke("report", *args, "-o", tmp_path / "r.html", "--home", home)
        assert result.exit_code == 2 and result.output.startswith("error: ") and expected in result.output, args
        assert "Traceback" not in result.output
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = invoke("report", ids["other"], "-o", blocked / "r.html", "--home", home)
    assert result.exit_code == 2 and "choose another -o path" in result.output
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before  # nothing in the home changed


def test_a_hand_edited_field_of_the_wrong_type_is_one_line_naming_doctor(tmp_path):
    """report, plot and runs export parse a run's record once: a field of the wrong type in run.json is one
    line naming the run, the field and `sdd-tui doctor`, exit 2 (report used to end in a traceback), and the
    store is left as it was."""
    from sdd_test_helpers import add_run, error_line, files_of, invoke as invoke_cli, run_record

    from sdd_tui.core.paths import RUN_FILE

    home, run_id = tmp_path / "home", "20260101-000000-beef"
    rounds = [{"round": i, "sparsity": 1 - 0.8**i, "test_acc": 0.5, "train_acc": 0.9} for i in range(3)]
    add_run(Store(home), run_record(run_id, config={"noise": {"kind": "symmetric", "rate": 0.2}}), rounds)
    assert invoke_cli("plot", run_id, "-o", str(tmp_path / "ok.svg"), "--home", str(home)).exit_code == 0
    meta_path = home / "runs" / run_id / RUN_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps({**meta, "started": "yesterday"}), encoding="utf-8")
    before = files_of(home)
    for args in (("report", run_id, "-o", "r.html"), ("plot", run_id, "-o", "f.svg"),
                 ("runs", "export", "--all", "-o", "t.csv")):
        args = [str(tmp_path / a) if a in ("r.html", "f.svg", "t.csv") else a for a in args]
        result = invoke_cli(*args, "--home", str(home))
        assert result.exit_code == 2, (args, result.output)
        line = error_line(result)
        assert f"run {run_id} has a started of type str" in line and "`sdd-tui doctor`" in line, line
    assert files_of(home) == before
    assert not any((tmp_path / name).exists() for name in ("r.html", "f.svg", "t.csv"))


# ---------------------------------------------------------------------------- pure parts


def test_references_match_the_papers_settings_only():
    from sdd_tui.core.analysis.figures import Curve
    from sdd_tui.core.analysis.report_stats import reference_for, reference_rows

    config = {"data": {"name": "cifar10"}, "model": {"name": "resnet18"}, "noise": {"kind": "symmetric", "rate": 0.2},
              "prune": {"method": "magnitude"}, "retrain": {"mode": "rewind"}}
    reference = reference_for(config)
    assert reference["dense"] == 83.3 and "Figure 1" in reference["source"]
    assert reference_for({**config, "noise": {"kind": "symmetric", "rate": 0.4}}) is None
    curve = Curve([0, 5, 9], [0.0, 0.98, 0.994], [0.80, 0.75, 0.90], [0.0] * 3, [1] * 3)
    rows = reference_rows(reference, curve, {"dip": {"round": 5}, "peak": {"round": 9}})
    assert rows[0] == ("dense", "83.3%", "80.0%", "-3.3")
    assert rows[2][3] == "+2.4"  # the peak: 90.0% against 87.6%


def test_correlations_need_three_points_and_variation():
    from sdd_tui.core.analysis.report_stats import correlation

    rising = correlation("all rounds", [1.0, 2.0, 3.0, 4.0], [0.1, 0.3, 0.2, 0.9])
    assert rising.count == 4 and rising.spearman == pytest.approx(0.8) and rising.pearson == pytest.approx(0.8262, abs=1e-4)
    tied = correlation("ties", [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])  # scipy.stats.spearmanr: 0.9487
    assert tied.spearman == pytest.approx(0.9487, abs=1e-4)
    assert correlation("x", [1.0, 2.0], [1.0, 2.0]).why_not.startswith("needs 3")
    assert "constant" in correlation("x", [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]).why_not


# ---------------------------------------------------------------------------- the app's R


@pytest.mark.slow
async def test_r_writes_the_report_of_a_dashboard_and_of_a_history_selection(lab, wait_for):
    from sdd_tui.app import SddApp

    home, ids = lab
    reports = home / "reports"
    app = SddApp(store=Store(home), blink=False)
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.notify = lambda message, **kw: notes.append(str(message))
        app.open_run(ids["other"])
        await pilot.pause()
        await pilot.press("R")
        await wait_for(pilot, lambda: any(n.startswith("report written") for n in notes), "the dashboard's report")
        (first,) = list(reports.glob("*.html"))
        assert ids["other"] in first.name and str(first) in notes[-1]
        await pilot.press("escape", "h")
        await pilot.pause()
        app.screen.selected = set(ids["seeds"])
        await pilot.press("R")
        await wait_for(pilot, lambda: sum(n.startswith("report written") for n in notes) == 2, "the history's report")
    second = next(p for p in reports.glob("*.html") if p != first)
    assert second.name.endswith("+1.html") and "smoke (2 seeds: 0, 1)" in second.read_text(encoding="utf-8")
