"""`appatlas caption|index|plan|export|bench retrieval`: from an atlas and an intent to a runnable test.

Thin: each command parses its arguments, calls one function, prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()
exporter = typer.Typer(no_args_is_help=True, help="Export test cases to formats that run without appatlas.")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("caption")(caption)
    app.command("index")(index)
    app.command("plan")(plan)
    app.add_typer(exporter, name="export")
    bench.command("retrieval")(bench_retrieval)


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
    raise typer.Exit(2)


@contextmanager
def _progress() -> Iterator[Any]:
    """A rich progress bar; yields the `progress(what, done, total)` callback appatlas functions take."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield progress


def caption(
    atlas: Path = typer.Argument(..., help="An atlas folder."),
    captioner: str = typer.Option("heuristic", "--captioner", "-c", help="heuristic, llm, or local."),
    llm_base_url: str = typer.Option("", help="OpenAI-compatible endpoint (else $APPATLAS_LLM_BASE_URL)."),
    llm_model: str = typer.Option("", help="Model name for --captioner llm (else $APPATLAS_LLM_MODEL)."),
    llm_timeout: float = typer.Option(30.0, help="Seconds to wait for one caption."),
    images: bool = typer.Option(False, help="Send screenshots to the model (for models that take images)."),
    redo: bool = typer.Option(False, help="Caption again what this captioner already captioned."),
) -> None:
    """Caption every screen and transition of an atlas (what it is for, what it does).

    Example: appatlas caption notes.atlas --captioner llm --llm-base-url http://127.0.0.1:8000/v1
    """
    from appatlas.graph.atlas import Atlas
    from appatlas.rag.captioner import caption_atlas, make_captioner

    options: dict[str, Any] = {}
    if captioner == "llm":
        options = {"base_url": llm_base_url, "model": llm_model, "timeout": llm_timeout, "images": images}
    try:
        maker = make_captioner(captioner, **options)
        with Atlas.open(atlas) as a, _progress() as progress:
            report = caption_atlas(a, maker, redo=redo, progress=progress)
    except AppatlasError as exc:
        _fail(exc)
    written = ", ".join(f"{n} by {who}" for who, n in sorted(report.by.items())) or "nothing new"
    console.print(f"captioned {report.screens} screens and {report.transitions} transitions of {atlas} "
                  f"({written}; {report.kept} already captioned)")


def index(
    atlas: Path = typer.Argument(..., help="An atlas folder."),
    rebuild: bool = typer.Option(False, help="Start the index over instead of updating it."),
    captioner: str = typer.Option("heuristic", help="Whose captions to index (missing ones: heuristic)."),
    screenshots: str = typer.Option("auto", help="auto (those the atlas has), render (wireframes too), off."),
) -> None:
    """Build or update the retrieval index beside an atlas (ATLAS/index: FAISS + BM25).

    It holds the screens, transitions and recorded tasks (for planning) and every element of every
    screen with what it leads to (what the agent decides with). Only what changed since the last run
    is embedded again.
    Example: appatlas index notes.atlas
    """
    from appatlas.agent.knowledge import Knowledge
    from appatlas.graph.atlas import Atlas
    from appatlas.rag.store import build_index

    if screenshots not in ("auto", "render", "off"):
        _fail(typer.BadParameter("--screenshots must be auto, render or off"))
    try:
        with Atlas.open(atlas) as a, _progress() as progress:
            # The elements as the agent reads them (its options, and where each leads), made here: rag may not
            # import the agent's option reader.
            elements = Knowledge.from_atlas(a, store=False).element_docs()
            report = build_index(a, captioner=captioner, screenshots=screenshots, rebuild=rebuild, progress=progress,
                                 elements=elements)
    except AppatlasError as exc:
        _fail(exc)
    table = Table(title=f"index of {atlas}")
    for col in ("collection", "added", "changed", "removed", "kept"):
        table.add_column(col)
    for name, counts in report.items():
        table.add_row(name, *(str(counts[k]) for k in ("added", "changed", "removed", "kept")))
    console.print(table)


def plan(
    atlas: Path = typer.Argument(..., help="An atlas folder (indexed with `appatlas index`)."),
    intent: str = typer.Argument("", help="What to test, in words: \"create a contact Stephen Bob, mobile 123\"."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to save the test(s) as YAML."),
    suite: str = typer.Option("", help="'coverage': the fewest tests that visit every screen."),
    edges: bool = typer.Option(False, help="With --suite coverage: cover every transition, not every screen."),
    start: str = typer.Option(None, help="Structure key of the start screen (default: retrieved)."),
    screenshot: Path = typer.Option(None, help="A screenshot of where the test starts."),
    alternatives: int = typer.Option(3, "-k", help="How many alternative routes to plan."),
    planner: str = typer.Option("agent", help="agent (default): the agent's own decisions rehearsed on the atlas "
                                "first (its route when it finishes there), the word routes as alternatives; "
                                "words: only routes through the transitions whose captions match the intent."),
) -> None:
    """Plan a test from an intent (or a coverage suite), print it and save it as YAML.

    Example: appatlas plan notes.atlas "Create a text note named 'Groceries'" --out groceries.yaml
    Example: appatlas plan notes.atlas "disable autosave notes" --planner words
    Example: appatlas plan notes.atlas --suite coverage --out coverage.yaml
    """
    from appatlas.graph.atlas import Atlas
    from appatlas.graph.testcases import TestSuite, dump_tests, save_tests
    from appatlas.rag.plan import coverage_tests, plan_intent

    if planner not in ("words", "agent"):
        raise typer.BadParameter(f"--planner is words or agent, not {planner!r}")
    rehearse_with = None
    if planner == "agent":
        from appatlas.agent.rehearse import rehearser as rehearse_with
    try:
        with Atlas.open(atlas) as a:
            package = a.get_meta("package")
            if suite:
                if suite != "coverage":
                    raise typer.BadParameter("the only suite is 'coverage'")
                tests = coverage_tests(a, edges=edges)
                result = TestSuite(tests, app=package)
            elif intent:
                planned = plan_intent(atlas, intent, start=start, k=alternatives,
                                      screenshot=screenshot.read_bytes() if screenshot else None,
                                      rehearse_with=rehearse_with)
                result = TestSuite([planned.test], app=package)
                for kt in planned.retrieval.key_transitions:
                    console.print(f"[dim]key step:[/] {kt.reason}")
                for why in planned.rejected:
                    console.print(f"[dim]route rejected:[/] {why}", markup=True, highlight=False)
            else:
                raise typer.BadParameter("give an intent, or --suite coverage")
    except (AppatlasError, OSError) as exc:
        _fail(exc)
    console.print(dump_tests(result), markup=False, highlight=False)
    if out is not None:
        save_tests(out, result)
        console.print(f"saved {len(result.tests)} test(s) to {out}")


@exporter.command("pytest")
def export_pytest_cmd(
    tests: Path = typer.Argument(..., help="A test-case YAML file (from `appatlas plan`)."),
    out: Path = typer.Option(..., "--out", "-o", help="The pytest file to write."),
    platform: str = typer.Option("", "--platform", help="android (uiautomator2), harmony (hmdriver2) or web "
                                 "(Playwright); default: the platform of the atlas the tests name, else android."),
) -> None:
    """Export tests as a pytest file that drives uiautomator2 (hmdriver2 for HarmonyOS) directly, no appatlas needed.

    Example: appatlas export pytest groceries.yaml --out test_notes.py
    """
    from appatlas.graph.export_pytest import export_pytest
    from appatlas.graph.testcases import load_tests

    try:
        suite = load_tests(tests)
        named = str(suite.meta.get("atlas") or "")  # Path("") would be the current folder
        if not platform and named and Path(named).is_dir():
            from appatlas.graph.atlas import Atlas

            with Atlas.open(Path(named)) as a:
                platform = a.platform
        export_pytest(suite, out, source=str(tests), platform=platform or "android")
    except AppatlasError as exc:
        _fail(exc)
    how = {"harmony": "HARMONY_SERIAL=<serial from `hdc list targets`>",
           "web": "APPATLAS_URL=<the site's start URL>"}.get(platform, "ANDROID_SERIAL=<serial>")
    console.print(f"wrote {len(suite.tests)} test(s) to {out}; run: {how} pytest {out}")


def bench_retrieval(
    data: Path = typer.Option(..., "--data", help="Folder of app folders (DroidTask layout)."),
    out: Path = typer.Option(..., "--out", help="The JSON result file."),
    captions: str = typer.Option("heuristic", help="heuristic, or reference (each app's reference_captions.yaml)."),
    apps: str = typer.Option("", help="Comma-separated app names (default: all)."),
    screenshots: bool = typer.Option(True, help="Also measure screenshot retrieval."),
    real: Path = typer.Option(None, help="A DroidBot folder with real screenshots (default: DATA/../droidbot-yelp)."),
    scale: int = typer.Option(10_000, help="Also time queries on a synthetic index of this many screens (0: skip)."),
    atlas: str = typer.Option("explore", "--atlas", help=(
        "explore (the headline: the index of a crawl of the app with no task's demonstration on it) or import "
        "(the recording, each task and its demonstration left out).")),
    crawl_budget: int = typer.Option(1000, "--crawl-budget", help="Actions of the crawl for --atlas explore."),
    planner: str = typer.Option("agent", help="The planner measured: agent (`appatlas plan`'s default: the agent's "
                                "decisions rehearsed on the atlas first), or words (caption-matched routes only)."),
) -> None:
    """Measure retrieval: start/end screens, plan validity, screenshots, query time (BENCHMARKS.md §3).

    Example: appatlas bench retrieval --data ../shared/data/droidtask --out retrieval.json
    """
    from appatlas.bench.retrieval import SUMMARY_KEYS, run_retrieval_bench

    real = real if real is not None else data.parent / "droidbot-yelp"
    try:
        with _progress() as progress:
            result = run_retrieval_bench(data=data, out=out, captions=captions, progress=progress,
                                         apps=[a for a in apps.split(",") if a] or None, screenshots=screenshots,
                                         real_screenshots=real if real.is_dir() else None, scale=scale,
                                         setting=atlas, crawl_budget=crawl_budget, planner=planner)
    except (AppatlasError, FileNotFoundError, ValueError) as exc:
        _fail(exc)
    table = Table(title=f"retrieval ({captions} captions, --atlas {atlas}, --planner {planner})")
    table.add_column("app")
    for key in SUMMARY_KEYS:
        table.add_column(key.replace("_", "\n", 1), justify="right")  # two-line headers fit an 80-column terminal
    rows = [*result["apps"].items(), ("all", result["summary"])]
    for name, row in rows:
        table.add_row(name, *(_cell(row.get(k)) for k in SUMMARY_KEYS))
    console.print(table)
    ceiling = result["summary"].get("ceiling") or {}
    console.print(f"the best the knowledge allows (end screens it holds, tasks whose every step it saw): "
                  f"end_top {_cell(ceiling.get('end_top'))}, plan_valid {_cell(ceiling.get('plan_valid'))}")
    console.print(f"first state of each recorded step only: {json.dumps(result['summary']['first_state'])}")
    console.print(f"screenshots: {json.dumps(result['summary']['screenshots']['by_change'])}")
    if "scale" in result["summary"]:
        console.print(f"query time at scale: {json.dumps(result['summary']['scale'])}")
    console.print(f"wrote {out}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.1f}"
    return str(value)
