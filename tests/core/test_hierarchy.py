from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appatlas.errors import HierarchyError
from appatlas.hierarchy import _ILLEGAL_XML, ROOT_CLASS, parse_droidbot_views, parse_u2_xml, to_u2_xml
from appatlas.types import Bounds, Widget

DUMP = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\r\n<hierarchy rotation=\"0\">\r\n"
    '  <node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="com.x" content-desc="" '
    'checkable="false" checked="false" clickable="false" enabled="true" focusable="false" focused="false" '
    'scrollable="false" long-clickable="false" password="false" selected="false" visible-to-user="true" '
    'bounds="[0,0][1080,2280]">\r\n'
    '    <node NAF="true" index="0" text="OK &amp; go" resource-id="com.x:id/ok" class="android.widget.Button" '
    'package="com.x" content-desc="" checkable="false" checked="false" clickable="true" enabled="true" '
    'focusable="true" focused="false" scrollable="false" long-clickable="false" password="false" selected="false" '
    'visible-to-user="true" bounds="[10,20][300,120]" drawing-order="1" hint="" display-id="0" />\r\n'
    '    <node index="1" text="" resource-id="com.x:id/name" class="android.widget.EditText" package="com.x" '
    'content-desc="" checkable="false" checked="false" clickable="true" enabled="true" focusable="true" '
    'focused="true" scrollable="false" long-clickable="true" password="false" selected="false" '
    'visible-to-user="true" bounds="[10,200][1070,300]" hint="Your name" />\r\n'
    "  </node>\r\n</hierarchy>"
)


def test_u2_dump_parses_into_one_tree_under_a_synthetic_root() -> None:
    root = parse_u2_xml(DUMP, source="dump.xml")
    assert root.class_name == ROOT_CLASS
    (window,) = root.children
    ok, name = window.children
    assert (ok.text, ok.resource_id, ok.clickable, ok.bounds) == ("OK & go", "com.x:id/ok", True, Bounds(10, 20, 300, 120))
    assert name.editable and name.long_clickable and name.focused and name.hint == "Your name"


def test_u2_xml_round_trips_through_our_writer() -> None:
    root = parse_u2_xml(DUMP)
    assert parse_u2_xml(to_u2_xml(root), width=root.bounds.width, height=root.bounds.height) == root


def test_writer_uses_crlf_and_the_u2_header() -> None:
    xml = to_u2_xml(parse_u2_xml(DUMP))
    assert xml.startswith("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\r\n<hierarchy rotation=\"0\">")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty dump"),
        (b"<hierarchy><node bounds='[0,0]'/></hierarchy>", "bad bounds"),
        (b"<html/>", "expected <hierarchy>"),
        (b"<hierarchy><node", "malformed XML"),
        (b"\xff\xfe<h", "not UTF-8"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><hierarchy/>', "DOCTYPE"),
    ],
)
def test_malformed_dumps_raise_hierarchy_error_naming_source_and_problem(data: bytes, problem: str) -> None:
    with pytest.raises(HierarchyError) as err:
        parse_u2_xml(data, source="phone-1/dump.xml")
    assert "phone-1/dump.xml" in str(err.value) and problem in str(err.value)


def test_droidbot_views_build_the_parent_child_tree_and_skip_invisible_views() -> None:
    views = [
        {"temp_id": 0, "parent": -1, "children": [1, 2], "class": "FrameLayout", "bounds": [[0, 0], [100, 200]]},
        {"temp_id": 1, "parent": 0, "children": [], "class": "Button", "text": "Go", "clickable": True,
         "bounds": [[0, 0], [50, 50]], "resource_id": None},
        {"temp_id": 2, "parent": 0, "children": [], "class": "Hidden", "visible": False, "bounds": [[0, 0], [1, 1]]},
    ]
    root = parse_droidbot_views({"views": views, "width": 100, "height": 200})
    (frame,) = root.children
    assert [c.class_name for c in frame.children] == ["Button"]
    assert frame.children[0].text == "Go" and frame.children[0].resource_id == ""
    assert root.bounds == Bounds(0, 0, 100, 200)


def test_droidbot_parent_cycles_are_reported_not_recursed_forever() -> None:
    views = [{"temp_id": 0, "parent": -1, "children": [1], "bounds": [[0, 0], [1, 1]]},
             {"temp_id": 1, "parent": 0, "children": [2], "bounds": [[0, 0], [1, 1]]},
             {"temp_id": 2, "parent": 1, "children": [1], "bounds": [[0, 0], [1, 1]]}]
    with pytest.raises(HierarchyError, match="nested deeper"):
        parse_droidbot_views(views, source="state.json")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_but_hierarchy_error(data: bytes) -> None:
    try:
        parse_u2_xml(data)
    except HierarchyError:
        pass


_ATTR = st.sampled_from(["text", "bounds", "class", "clickable", "resource-id", "index"])
_VAL = st.one_of(st.text(max_size=12), st.sampled_from(["true", "[0,0][10,10]", "[5,5][1,1]", "[-3,0][2,2]"]))


@st.composite
def _xmlish(draw: st.DrawFn) -> str:
    nodes = draw(st.lists(st.dictionaries(_ATTR, _VAL, max_size=4), max_size=5))
    body = "".join(
        "<node " + " ".join(f'{k}="{v.replace(chr(34), "")}"' for k, v in n.items()) + " />" for n in nodes)
    return draw(st.sampled_from(["<hierarchy>{}</hierarchy>", "<hierarchy><node>{}</node></hierarchy>", "{}"])).format(body)


@settings(max_examples=300)
@given(_xmlish())
def test_near_valid_dumps_parse_or_raise_hierarchy_error(text: str) -> None:
    try:
        root = parse_u2_xml(text)
    except HierarchyError:
        return
    assert all(w.bounds.width >= 0 and w.bounds.height >= 0 for w in root.walk())


@settings(max_examples=200)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)),
                    max_leaves=20))
def test_arbitrary_json_views_never_raise_anything_but_hierarchy_error(data: object) -> None:
    try:
        parse_droidbot_views(json.dumps(data))
    except HierarchyError:
        pass


_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)


@st.composite
def _widgets(draw: st.DrawFn, depth: int = 0) -> Widget:
    x1, y1 = draw(st.integers(0, 500)), draw(st.integers(0, 500))
    kids = () if depth >= 2 else tuple(draw(st.lists(_widgets(depth + 1), max_size=3)))
    return Widget(class_name=draw(st.sampled_from(["android.widget.TextView", "android.widget.Button"])),
                  bounds=Bounds(x1, y1, x1 + draw(st.integers(0, 500)), y1 + draw(st.integers(0, 500))),
                  text=draw(_texts), content_desc=draw(_texts), clickable=draw(st.booleans()),
                  checked=draw(st.booleans()), children=kids)


@settings(max_examples=150)
@given(st.lists(_widgets(), min_size=1, max_size=3))
def test_any_widget_tree_survives_writing_and_reparsing(windows: list[Widget]) -> None:
    root = Widget(class_name=ROOT_CLASS, bounds=Bounds(0, 0, 1080, 2280), children=tuple(windows))
    again = parse_u2_xml(to_u2_xml(root), width=1080, height=2280)
    def seen(w: Widget) -> tuple[object, ...]:
        return (w.class_name, w.bounds, w.clickable, w.checked, w.text, w.content_desc)

    # Characters XML 1.0 cannot carry are dropped by design; everything else comes back.
    expected = [(w.class_name, w.bounds, w.clickable, w.checked, _ILLEGAL_XML.sub("", w.text),
                 _ILLEGAL_XML.sub("", w.content_desc)) for w in root.walk()]
    assert [seen(w) for w in again.walk()] == expected
