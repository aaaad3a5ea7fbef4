"""`appatlas bench vision` and `appatlas vision parse`: screens read from pixels."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from appatlas.errors import AppatlasError

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    vision = typer.Typer(no_args_is_help=True, help="Screens read from pixels (OCR + classical vision).")
    vision.command("parse")(parse_cmd)
    vision.command("campaign")(campaign_cmd)
    app.add_typer(vision, name="vision")
    bench.command("vision")(bench_vision_cmd)


def parse_cmd(
    image: Path = typer.Argument(..., help="A screenshot (PNG or JPEG)."),
    width: int = typer.Option(0, "--width", help="Screen width in pixels (default: the image's)."),
    height: int = typer.Option(0, "--height", help="Screen height in pixels (default: the image's)."),
    annotated: Path = typer.Option(None, "--annotated", help="Also write the screenshot with the boxes drawn."),
) -> None:
    """Print the widgets read off a screenshot: kind, box, text (JSON lines).

    Example: appatlas vision parse shot.png --width 1080 --height 2280 --annotated boxes.png
    """
    try:
        from appatlas.vision.device import annotate_png
        from appatlas.vision.parse import decode_image, parse_image

        data = image.read_bytes()
        img = decode_image(data)
        w, h = width or img.shape[1], height or img.shape[0]
        parsed = parse_image(img, width=w, height=h)
    except AppatlasError as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(2) from None
    except (OSError, ValueError) as exc:
        console.print(f"[bold red]cannot read {image}:[/] {exc}")
        raise typer.Exit(2) from None
    leaves = [x for top in parsed.widgets for x in top.walk()]
    for x in leaves:
        b = x.bounds
        print(json.dumps({"kind": x.class_name.rsplit(".", 1)[-1], "box": [b.x1, b.y1, b.x2, b.y2],
                          "text": x.label, "checked": x.checked if x.checkable else None, "id": x.resource_id,
                          "usable": x.enabled}))
    if annotated is not None:
        annotated.write_bytes(annotate_png(data, leaves, width=w))
    console.print(f"{len(leaves)} widgets in {parsed.ms:.0f} ms" + (" (a dialog is open)" if parsed.modal else ""),
                  style="dim")


def campaign_cmd(
    out: Path = typer.Option(Path("vision-campaign"), "--out", help="Folder for the atlas, tests and reports."),
    budget: int = typer.Option(150, "--budget", help="Crawl actions."),
    devices: int = typer.Option(2, "--devices", help="Virtual phones the campaign runs on."),
) -> None:
    """The Sky Hopper game from pixels end to end: crawl, plan four intents, run them, check each verdict.

    The game runs behind the local adb + uiautomator2 server (its tree is one SurfaceView); every
    screen is read from the screenshot and every action is a tap at a detected box. Each verdict is
    compared with what the game really holds afterwards. The HTML report shows the detected boxes.

    Example: appatlas vision campaign --out game-run --budget 150
    """
    from appatlas.vision.campaign import vision_campaign

    try:
        with console.status("…") as status:
            s = vision_campaign(out, budget=budget, devices=devices, say=status.update)
    except AppatlasError as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(2) from None
    c, camp = s["crawl"], s["campaign"]
    console.print(f"crawl: {c['actions']} actions, {c['screens']} screens by pixel key, "
                  f"{c['spec_screens_reached']} of {c['of']} of the game's screens and dialogs; "
                  f"{c['parse_ms_mean']:.0f} ms per screenshot")
    table = Table(title=f"campaign ({camp['report']})")
    for col in ("intent", "verdict", "the game really", "agrees"):
        table.add_column(col)
    for v in camp["verdicts"]:
        table.add_row(v["intent"], "PASS" if v["passed"] else "FAIL", "holds" if v["real"] else "does not hold",
                      "yes" if v["agrees"] else "[bold red]NO[/]")
    console.print(table)
    (out / "summary.json").write_text(json.dumps(s, indent=2))
    if camp["verdicts_wrong"] or not camp["verdicts"]:
        raise typer.Exit(1)


def bench_vision_cmd(
    out: Path = typer.Option(Path("bench-vision.json"), "--out", help="Where to write the JSON result."),
    apps: str = typer.Option("game,demo", "--apps", help="Built-in apps whose canvas screens are read."),
    crawl_apps: str = typer.Option("game", "--crawl-apps", help="Apps crawled from pixels and from the tree."),
    crawl_budget: int = typer.Option(150, "--crawl-budget", help="Actions per crawl (the same for both)."),
    tour_budget: int = typer.Option(300, "--tour-budget", help="Actions of the tour that collects screens."),
) -> None:
    """Read the built-in apps' screens from pixels alone and score it against what was drawn.

    Writes summary.widget_recall, widget_precision (IoU >= 0.5), ocr_char_accuracy, ms_per_screen
    (wall of a cold read; also _max, _best_of_3, _warm, and cpu_ms_per_screen, which load does not
    inflate), identity_accuracy, crawl_coverage_ratio (pixels vs view tree, same budget) and
    crawl_parse_ms_mean, with the load average before and after.

    Example: appatlas bench vision --out bench-vision.json
    """
    from appatlas.bench.vision import run_vision_bench

    try:
        with console.status("reading screens…") as status:
            doc = run_vision_bench(out=out, apps=tuple(a for a in apps.split(",") if a),
                                   crawl_apps=tuple(a for a in crawl_apps.split(",") if a),
                                   crawl_budget=crawl_budget, tour_budget=tour_budget, say=status.update)
    except AppatlasError as exc:
        console.print(f"[bold red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"vision: {doc['screens']} screens, {doc['screenshots']} screenshots "
                        f"(load {doc['load_average'][0]:.1f} on {doc['cpus']} CPUs; JSON: {out})")
    table.add_column("metric")
    table.add_column("all", justify="right")
    for app in doc["per_app"]:
        table.add_column(app, justify="right")
    for key in ("widget_recall", "widget_precision", "ocr_char_accuracy", "identity_accuracy", "ms_per_screen",
                "ms_per_screen_max", "ms_per_screen_best_of_3", "ms_per_screen_best_of_3_max", "ms_per_screen_warm",
                "cpu_ms_per_screen", "cpu_ms_per_screen_max"):
        vals = [doc["summary"].get(key), *(doc["per_app"][a].get(key) for a in doc["per_app"])]
        table.add_row(key, *(_fmt(key, v) for v in vals))
    table.add_row("crawl_coverage_ratio", _fmt("ratio", doc["summary"]["crawl_coverage_ratio"]),
                  *(_fmt("ratio", doc["crawl"][a]["ratio"]) if a in doc["crawl"] else "" for a in doc["per_app"]))
    table.add_row("crawl_parse_ms_mean (pixel crawl)", _fmt("ms", doc["summary"]["crawl_parse_ms_mean"]),
                  *(_fmt("ms", doc["crawl"].get(a, {}).get("pixels", {}).get("parse_ms_mean")) for a in doc["per_app"]))
    console.print(table)
    console.print(f"load average before {doc['load_average_before'][0]:.1f}, after {doc['load_average'][0]:.1f}; "
                  "wall times wait for the CPU under load, CPU times do not", style="dim")


def _fmt(key: str, v: object) -> str:
    if v is None:
        return "-"
    if "ms" in key:
        return f"{v:.0f}"
    return f"{v:.1%}"  # type: ignore[str-format]
