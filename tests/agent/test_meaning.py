"""Meaning: what an element says and leads to, compared with an intent by all-MiniLM-L6-v2; fitting on other apps."""

from __future__ import annotations

import pytest

from appatlas.agent.knowledge import Knowledge
from appatlas.agent.meaning import Meaning, element_text
from appatlas.agent.options import options
from appatlas.agent.policy import Decision, PolicyConfig
from appatlas.agent.tuning import fit
from appatlas.graph.atlas import StoredTransition
from appatlas.types import Action, ActionKind, Bounds, Screen, Selector, Widget

W, H = 1080, 2280

pytest.importorskip("sentence_transformers")


def _screen(activity: str, *widgets: Widget) -> Screen:
    frame = Widget("android.widget.FrameLayout", Bounds(0, 0, W, H), package="com.x", children=widgets)
    return Screen("com.x", activity, Widget("hierarchy", Bounds(0, 0, W, H), children=(frame,)), W, H)


def _icon(i: int, desc: str, rid: str) -> Widget:
    return Widget("android.widget.ImageView", Bounds(100 * i, 0, 100 * i + 90, 90), content_desc=desc,
                  clickable=True, package="com.x", resource_id=f"com.x:id/{rid}")


def _text(i: int, text: str) -> Widget:
    return Widget("android.widget.TextView", Bounds(0, 200 + 100 * i, W, 290 + 100 * i), text=text, package="com.x")


MAIN = _screen("com.x.Main", _icon(0, "More options", "overflow"), _icon(1, "Sort", "sort_items"))
ABOUT = _screen("com.x.AboutActivity", _text(0, "Frequently asked questions"), _text(1, "Version 1.2"),
                _text(2, "Licenses"))


def _knowledge(*, with_edge: bool) -> Knowledge:
    tap = Action(ActionKind.TAP, target=Selector(resource_id="com.x:id/overflow", content_desc="More options"))
    edges = [StoredTransition(1, 1, 2, "main", "about", tap, 1, 0, "crawl")] if with_edge else []
    return Knowledge.build(package="com.x", screens={1: MAIN, 2: ABOUT}, state_key={1: "main", 2: "about"},
                           content={}, tasks=[], transitions=edges)


def test_an_element_says_its_description_hint_and_resource_id() -> None:
    overflow = next(o for o in options(MAIN) if o.label == "More options")
    text = element_text(overflow)
    assert "More options" in text and "overflow" in text


def test_where_an_element_leads_carries_its_meaning() -> None:
    intent = "read the frequently asked questions"
    taps = [o for o in options(MAIN) if o.kind is ActionKind.TAP]
    known = Meaning(_knowledge(with_edge=True))
    assert "Frequently asked questions" in known.memory("main", taps[0])
    with_memory = known.similarities(intent, "main", taps)
    without = Meaning(_knowledge(with_edge=False)).similarities(intent, "main", taps)
    assert with_memory[0] > with_memory[1]  # the overflow menu, for what its About page shows
    assert with_memory[0] > without[0] + 0.1


def test_an_abbreviation_means_the_words_people_write() -> None:
    screen = _screen("com.x.Contact", _icon(0, "SMS", "contact_sms"), _icon(1, "Email", "contact_email"),
                     _icon(2, "Call", "contact_call"))
    taps = [o for o in options(screen) if o.kind is ActionKind.TAP]
    sims = Meaning(_knowledge(with_edge=False)).similarities("send a text message to Bob", "contact", taps)
    assert taps[max(range(len(taps)), key=sims.__getitem__)].label == "SMS"


def test_fit_chooses_on_the_training_apps_only() -> None:
    seen: list[tuple[str, ...]] = []

    def score(config: PolicyConfig, apps) -> float:
        seen.append(tuple(apps))
        return {0.0: 0.5, 0.5: 0.7, 1.0: 0.6, 2.0: 0.7}[config.meaning]

    chosen = fit(["calendar", "clock"], score)
    assert chosen.meaning == 0.5  # the best, and of two equal the simpler
    assert all(apps == ("calendar", "clock") for apps in seen) and len(seen) == 4
    with pytest.raises(ValueError):
        fit([], score)


def test_a_decision_says_whether_the_model_made_it() -> None:
    assert Decision(None, "x", "llm").by_model and not Decision(None, "x", "graph").by_model


def test_meaning_reranks_what_is_worth_taking_and_cannot_make_an_option_worth_it() -> None:
    from appatlas.agent.policy import Policy

    intent = "open the help about frequently asked questions"
    translate = _icon(0, "Help translate", "help_translate")
    center = _icon(1, "Help center", "help_center")
    main = _screen("com.x.Main", translate, center)
    tap = Action(ActionKind.TAP, target=Selector(resource_id="com.x:id/help_center", content_desc="Help center"))
    # Other labels of the app, so that 'help' is a rare word there (worth taking by the graph).
    others = _screen("com.x.Settings", *(_icon(i, w, w.lower()) for i, w in enumerate(
        "Theme Language Backup Sync Notifications Privacy Storage Display Sound Accounts".split())))
    k = Knowledge.build(package="com.x", screens={1: main, 2: ABOUT, 3: others}, content={}, tasks=[],
                        state_key={1: "main", 2: "about", 3: "settings"},
                        transitions=[StoredTransition(1, 1, 2, "main", "about", tap, 1, 0, "crawl")])
    words_only = Policy(k).decide(intent, main, [], known_as="main")
    meant = Policy(k, config=PolicyConfig(meaning=4.0)).decide(intent, main, [], known_as="main")
    assert words_only.option is not None and words_only.option.label == "Help translate"  # a tie: reading order
    assert meant.option is not None and meant.option.label == "Help center", meant.reason  # it leads to the FAQ
    # Where the graph values nothing (icons that say nothing of the intent), meaning does not tap on by itself.
    alone = Policy(_knowledge(with_edge=True), config=PolicyConfig(meaning=10.0)).decide(
        "read the frequently asked questions", MAIN, [], known_as="main")
    assert alone.done
