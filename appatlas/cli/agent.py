"""`appatlas serve`, `appatlas run`, `appatlas campaign` and `appatlas bench tasks`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()
LLM_HELP = ("Model for where the graph is not certain: none (graph only), local (the trained ranker, "
            "`appatlas train agent`), local-lm (SmolLM2 by likelihood; --model gemma3-270m for Gemma-3-270M), "
            "local-compressed, openai.")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
    app.command("run")(run_cmd)
    app.command("campaign")(campaign_cmd)
    bench.command("tasks")(bench_tasks_cmd)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]{type(exc).__name__}:[/] {escape(str(exc))}")  # '[farm]' is not markup
    return typer.Exit(2)


def _threads(threads: int) -> None:
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def serve_cmd(
    model: str = typer.Option("smollm2-135m", "--model", help="smollm2-135m, a causal LM folder, or a folder "
                                                               "written by `appatlas compress`."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --api-key."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    api_key: str = typer.Option(os.environ.get("APPATLAS_API_KEY", ""), "--api-key",
                                help="Require 'Authorization: Bearer KEY' (default $APPATLAS_API_KEY)."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Cap on generated tokens per request."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for the model (0: torch's default)."),
) -> None:
    """Serve the local (optionally compressed) model over an OpenAI-compatible API.

    Endpoints: GET /v1/models, POST /v1/chat/completions (also with "stream": true).

    Example: appatlas serve --port 8000   then   APPATLAS_LLM_BASE_URL=http://127.0.0.1:8000/v1
    """
    from appatlas.agent.llm_local import LocalLM
    from appatlas.agent.serve import ServeConfig, make_server

    _threads(threads)
    config = ServeConfig(host=host, port=port, api_key=api_key, model_name=Path(model).name or model,
                         max_tokens=max_tokens)
    try:
        with console.status(f"loading {model}…"):
            lm = LocalLM.load(model)
        server = make_server(lm, config, warn=lambda m: console.print(f"[bold yellow]warning:[/] {m}"))
    except AppatlasError as exc:
        raise _fail(exc) from None
    console.print(f"serving [bold]{config.model_name}[/] on http://{host}:{server.server_address[1]}/v1 "
                  "(Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()


def _connect(serial: str, adb_port: int, app: str, options: dict | None = None):
    from appatlas.devices.select import open_device

    return open_device(serial, adb_port=adb_port, app=app, options=options)  # options: what the atlas kept


def run_cmd(
    intent: str = typer.Argument(..., help="What to do, in words, e.g. \"create a text note named 'Groceries'\"."),
    device: str = typer.Option(..., "--device", help="The phone's adb serial (see `appatlas devices list`), "
                        "harmony:SERIAL (HarmonyOS over hdc) or web:URL."),
    atlas: Path = typer.Option(..., "--atlas", help="The app's atlas (from `appatlas crawl` or `appatlas import`)."),
    llm: str = typer.Option("none", "--llm", help=LLM_HELP),
    model: str = typer.Option(None, "--model", help="Model name or folder for --llm."),
    max_steps: int = typer.Option(30, "--max-steps", help="Give up after this many actions."),
    out: Path = typer.Option(None, "--out", help="Folder for step screenshots (default: none kept)."),
    record: bool = typer.Option(False, "--record", help="Write the executed path back into the atlas."),
    adb_port: int = typer.Option(int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037)), "--adb-port"),
) -> None:
    """Carry out one intent on a phone, showing each step as it happens; exit 0 when it passed.

    Example: appatlas run --device emulator-5554 --atlas notes.atlas "disable autosave notes"
    """
    from appatlas.agent.knowledge import Knowledge
    from appatlas.agent.llm import make_llm
    from appatlas.agent.loop import Agent, RunConfig, record_experience
    from appatlas.cli.rag import _progress
    from appatlas.graph.atlas import Atlas

    try:
        from appatlas.devices.select import device_options

        with Atlas.open(atlas) as a, _progress() as progress:
            knowledge = Knowledge.from_atlas(a, progress=progress)  # with its retrieval store, built if missing
            options = device_options(a)
        lm = make_llm(llm, model=model)
        dev = _connect(device, adb_port, knowledge.package, options)
    except AppatlasError as exc:
        raise _fail(exc) from None
    try:
        plan = _plan(atlas, intent, dev)
    except AppatlasError as exc:  # an intent nothing in the atlas relates to: refused, never run
        raise _fail(exc) from None

    def show(step: dict) -> None:
        console.print(f"[bold]{step['index']:>2}[/] {step['action']}  [dim]{step['source']}: {step['reason']}[/]")

    result = Agent(knowledge, llm=lm).run(dev, intent, plan=plan, on_step=show,
                                          config=RunConfig(max_steps=max_steps, evidence_dir=out))
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    verdict = result.verdict
    word = "PASS" if verdict.passed else "INCONCLUSIVE" if verdict.status == "inconclusive" else "FAIL"
    console.print(f"[bold {'green' if verdict.passed else 'red'}]{word}[/] {verdict.reason}")
    for check in verdict.checks:
        mark = "[green]✓[/]" if check["holds"] else "[red]✗[/]"
        console.print(f"  {mark} {check['expectation']}  [dim]{check['evidence']}[/]")
    if record:
        with Atlas.open(atlas) as a:
            record_experience(a, result, intent=intent)
    raise typer.Exit(0 if verdict.passed else 1)


def _plan(atlas: Path, intent: str, dev):  # noqa: ANN001, ANN202 - a Device; TestCase | None
    """A plan from retrieval when the atlas has an index (the rag stage); None: the agent decides alone."""
    try:
        from appatlas.errors import IntentNotGrounded
        from appatlas.graph.fingerprint import structure_key
        from appatlas.rag.plan import plan_intent
    except ImportError:
        return None
    from appatlas.agent.rehearse import rehearser

    try:  # planned as `appatlas plan` plans by default: the agent's decisions rehearsed on the atlas first
        return plan_intent(atlas, intent, start=structure_key(dev.snapshot()), rehearse_with=rehearser).test
    except IntentNotGrounded:
        raise
    except (AppatlasError, ValueError, KeyError) as exc:
        console.print(f"[dim]no plan from retrieval ({exc}); deciding step by step[/]")
        return None


def campaign_cmd(
    suite: Path = typer.Argument(..., help="A test-case YAML file or a folder of them."),
    device: list[str] = typer.Option([], "--device", help="A device: adb SERIAL, harmony:SERIAL or web:URL; "
                              "repeat for several. With --farm: only these of the farm's phones."),
    atlas: Path = typer.Option(..., "--atlas", help="The app's atlas."),
    out: Path = typer.Option(Path("campaign"), "--out", help="Result folder (JUnit XML, HTML report, JSON)."),
    farm: str = typer.Option("", "--farm", help="Run on a Ray device farm: its head's HOST:PORT, or 'local' "
                             "(see `appatlas farm --help`; needs appatlas[farm])."),
    reconnect: float = typer.Option(300.0, "--reconnect", help="With --farm HOST:PORT: seconds to wait for a lost "
                                    "Ray head (and its phones) to come back, then go on by itself; 0: stop."),
    llm: str = typer.Option("none", "--llm", help=LLM_HELP),
    model: str = typer.Option(None, "--model", help="Model name or folder for --llm."),
    max_steps: int = typer.Option(30, "--max-steps", help="Give up a case after this many actions."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore the state of an earlier, interrupted campaign."),
    adb_port: int = typer.Option(int(os.environ.get("ANDROID_ADB_SERVER_PORT", 5037)), "--adb-port"),
) -> None:
    """Run a suite of test cases across devices in parallel; exit 0 only when every case passed.

    A failed case is retried once on another device (flaky vs broken); a device that drops out
    hands its cases to the others; an interrupted campaign resumes from OUT/campaign-state.json.

    Example: appatlas campaign tests/ --device emulator-5554 --device R58M --atlas notes.atlas --out results
    Example: appatlas campaign tests/ --farm 10.0.0.5:6379 --atlas notes.atlas   (every phone of a farm)
    """
    from appatlas.agent.campaign import load_suite, run_campaign
    from appatlas.agent.knowledge import Knowledge
    from appatlas.agent.llm import make_llm
    from appatlas.cli.rag import _progress
    from appatlas.graph.atlas import Atlas

    try:
        from appatlas.devices.select import device_options

        cases = load_suite(suite)
        with Atlas.open(atlas) as a, _progress() as progress:
            knowledge = Knowledge.from_atlas(a, progress=progress)  # with its retrieval store, built if missing
            options = device_options(a)
        if not device and not farm:
            raise ValueError("a campaign needs at least one device (--device SERIAL) or a farm (--farm ADDRESS)")
        if farm:  # the model is made next to each phone, not here
            from appatlas.cli.farm import campaign_on_farm

            result = campaign_on_farm(farm, cases, device, knowledge=knowledge, out=out, llm=llm, model=model,
                                      max_steps=max_steps, resume=not fresh, adb_port=adb_port,
                                      reconnect=reconnect, on_event=lambda m: console.print(f"[dim]{m}[/]"))
        else:
            lm = make_llm(llm, model=model)
    except (AppatlasError, ValueError) as exc:
        raise _fail(exc) from None
    if not farm:
        result = run_campaign(cases, device, connect=lambda s: _connect(s, adb_port, knowledge.package, options),
                              knowledge=knowledge, out=out, llm=lm, max_steps=max_steps, resume=not fresh,
                              on_event=lambda m: console.print(f"[dim]{m}[/]"))
    table = Table(title=f"campaign → {out}/report.html, {out}/junit.xml")
    for col in ("case", "status", "devices", "why"):
        table.add_column(col)
    for c in result.cases:
        last = c.attempts[-1] if c.attempts else {}
        table.add_row(c.name, c.status, ", ".join(a["device"] + (f"@{a['host']}" if a.get("host") else "")
                                                  for a in c.attempts), str(last.get("reason", "")))
    console.print(table)
    raise typer.Exit(0 if result.passed else 1)


def bench_tasks_cmd(
    data: Path = typer.Option(..., "--data", help="A folder of DroidTask app folders (like ../shared/data/droidtask)."),
    out: Path = typer.Option(Path("bench-tasks.json"), "--out", help="Where to write the JSON result."),
    apps: str = typer.Option("", "--apps", help="Only these apps (comma-separated folder names)."),
    llm: str = typer.Option("local", "--llm", help=LLM_HELP),
    atlas: str = typer.Option("explore", "--atlas", help=(
        "explore (the headline: a crawl of the app with no task's demonstration on it, no recorded task known) "
        "or import (the recording, the evaluated task and its demonstration left out).")),
    crawl_budget: int = typer.Option(1000, "--crawl-budget", help="Actions of the crawl for --atlas explore."),
    model: str = typer.Option(None, "--model", help="Model name or folder for --llm."),
    threads: int = typer.Option(0, "--threads", help="CPU threads for the model (0: torch's default)."),
    leave_app_out: bool = typer.Option(False, "--leave-app-out", help=(
        "Decide each app with a ranker trained, and its asking margin chosen, on the other app folders of --data "
        "— never on the evaluated app. Overrides --llm.")),
) -> None:
    """The agent on recorded tasks: step-wise accuracy (the AutoDroid metric) and free runs.

    Example: appatlas bench tasks --data ../shared/data/droidtask --out tasks.json --llm none
    Example: appatlas bench tasks --data ../shared/data/droidtask --out lao.json --leave-app-out
    """
    from appatlas.bench.tasks import run_tasks_bench

    _threads(threads)
    try:
        with console.status("running the tasks benchmark…") as status:
            doc = run_tasks_bench(data=data, out=out, llm=llm, atlas=atlas, llm_model=model, crawl_budget=crawl_budget,
                                  leave_app_out=leave_app_out,
                                  apps=tuple(a for a in apps.split(",") if a),
                                  progress=lambda app, what: status.update(f"{app}: {what}"))
    except (AppatlasError, ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from None
    table = Table(title=f"tasks benchmark, llm={doc['llm']}, atlas={atlas} (JSON: {out})")
    cols = ("action_accuracy", "completion_rate", "goal_success_rate", "model_share", "mean_steps_ratio",
            "decision_ms_p50", "decision_ms_p95", "tasks", "steps")
    table.add_column("app")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    rows = [*doc["apps"].items(), ("all", doc["summary"])]
    for name, m in rows:
        table.add_row(name, *(f"{m[c]:.1%}" if c.endswith(("accuracy", "rate", "share")) else
                              f"{m[c]:.2f}" if isinstance(m[c], float) else str(m[c]) for c in cols))
    console.print(table)
    _print_anchors(doc)
    s = doc["summary"]
    pct = (lambda v: "-" if v is None else f"{v:.1%}")  # noqa: E731
    counts = ", ".join(f"{n} {v}" for v, n in s.get("verdicts", {}).items())
    console.print(f"verdicts ({counts}): precision {pct(s['verdict_precision'])} (PASSes that reached the recorded "
                  f"goal), recall {pct(s['verdict_recall'])}; \"done\" alone: precision {pct(s['done_precision'])} "
                  f"({s['said_done']} runs), recall {pct(s['done_recall'])}; unrecorded taps {s['unrecorded_taps']}; "
                  f"from each step's first listed state: action accuracy {pct(s['first_state']['action_accuracy'])}, "
                  f"completion {pct(s['first_state']['completion_rate'])}")
    c = s.get("ceiling") or {}
    if c.get("of"):
        console.print(f"the knowledge holds every recorded screen of {c['known_tasks']} of {c['of']} tasks: goal "
                      f"success among them {pct(c['goal_success_known'])}; {c['successes_unknown']} successes among "
                      f"the rest (summary.ceiling)")


def _print_anchors(doc: dict) -> None:
    """AutoDroid's published results on the same apps, beside appatlas's (summary.anchors)."""
    anchors = doc["summary"].get("anchors") or {}
    if not anchors:
        return
    table = Table(title="beside AutoDroid (published per-step results, the same tasks)")
    table.add_column("app")
    for who in ("appatlas", *sorted({m for row in anchors.values() for m in row})):
        table.add_column(f"{who} action acc.", justify="right")
        table.add_column(f"{who} completion", justify="right")
    for app, row in anchors.items():
        ours = doc["summary"] if app == "all" else doc["apps"].get(app, {})
        cells = [f"{ours.get('action_accuracy', 0):.1%}", f"{ours.get('completion_rate', 0):.1%}"]
        for m in sorted({m for r in anchors.values() for m in r}):
            cells += [f"{row[m]['action_accuracy']:.1%}", f"{row[m]['completion_rate']:.1%}"] if m in row else ["-", "-"]
        table.add_row(app, *cells)
    console.print(table)
