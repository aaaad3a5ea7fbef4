"""Every error appatlas raises on purpose. Each message says what happened and what to do next.

AppatlasError              base of all of them
├── HierarchyError         a view hierarchy (uiautomator2 XML, DroidBot views JSON) cannot be parsed
├── SpecError              an app spec (YAML) is malformed or inconsistent
├── AtlasError             an atlas file cannot be used
│   ├── NotAnAtlas         the file exists but is not an appatlas atlas
│   ├── AtlasCorrupt       the file is an atlas but damaged
│   ├── AtlasTooNew        written by a newer appatlas (schema version above ours)
│   ├── AtlasFull          the disk filled up while writing (what was committed is kept)
│   ├── IndexMissing       the atlas has no retrieval index yet (`appatlas index ATLAS`)
│   └── IndexStale         the atlas changed since its index was built (`appatlas index ATLAS [--rebuild]`)
├── CaptionerError         a captioner cannot caption (unknown kind, endpoint down or too slow)
├── ModelMissing           a model appatlas needs (the offline text embedder) is not installed
├── LLMError               a language model could not answer (endpoint down, timed out, refused, unusable reply)
├── ServeRefused           `appatlas serve` will not start as asked (public address without an API key, port taken)
├── NoPlan                 no path in the atlas realises the intent from the start screen
│   ├── IntentNotGrounded  nothing in the atlas relates to the intent (names the closest screens)
│   └── PlanRejected       every route found fails the plan checks (says why)
├── TestCaseInvalid        a test-case file is malformed; names the field
├── ImportFailed           a recording folder cannot be imported at all
├── UnsafePath             a name from untrusted data would escape its folder
├── UnsafeName             a package or activity name is not a valid Android name (never sent to a shell)
├── FarmError              the Ray device farm cannot be used as asked (no phone, no cluster at the address)
│   └── FarmUnavailable    Ray is not installed (`pip install "appatlas[farm]"`)
└── DeviceError            talking to a device failed
    ├── DeviceDisconnected the device went away
    ├── DeviceTimeout      a call did not answer in time
    ├── AppCrashed         the app under test crashed or stopped responding (ANR)
    ├── UiServerDied       the on-device UI server died and one automatic restart failed
    ├── SelectorNotFound   no widget on the screen matches an action's selector
    └── ActionRefused      the screen cannot take this action (typing where no field has focus, …)
"""

from __future__ import annotations


class AppatlasError(Exception):
    """Base class for errors appatlas raises deliberately."""


class HierarchyError(AppatlasError):
    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"cannot parse the view hierarchy in {source}: {problem}")


class SpecError(AppatlasError):
    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"app spec {source}: {problem}")


class AtlasError(AppatlasError):
    pass


class NotAnAtlas(AtlasError):
    pass


class AtlasCorrupt(AtlasError):
    pass


class AtlasTooNew(AtlasError):
    pass


class AtlasFull(AtlasError):
    pass


class IndexMissing(AtlasError):
    pass


class IndexStale(AtlasError):
    pass


class CaptionerError(AppatlasError):
    pass


class ModelMissing(AppatlasError):
    pass


class LLMError(AppatlasError):
    pass


class ServeRefused(AppatlasError):
    pass


class NoPlan(AppatlasError):
    pass


class IntentNotGrounded(NoPlan):
    def __init__(self, intent: str, closest: list[str]) -> None:
        self.intent = intent
        self.closest = closest
        near = f"; the closest screens are {', '.join(closest)}" if closest else ""
        super().__init__(f"no screen or action of the atlas relates to {intent!r}{near}. Reword the intent with "
                         "what the app shows (a screen's title, a button's label), or crawl the part of the app "
                         "it is about")


class PlanRejected(NoPlan):
    def __init__(self, intent: str, reasons: list[str]) -> None:
        self.intent = intent
        self.reasons = reasons
        super().__init__(f"no plan for {intent!r} passes the plan checks: {'; '.join(reasons)}. Crawl more of the "
                         "app (the screens the intent needs), or name the start screen with --start")


class TestCaseInvalid(AppatlasError):
    __test__ = False  # not a pytest test class

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"test case {source}: {field}: {problem}")


class ImportFailed(AppatlasError):
    pass


class UnsafePath(AppatlasError):
    pass


class UnsafeName(AppatlasError):
    pass


class FarmError(AppatlasError):
    pass


class FarmUnavailable(FarmError):
    pass


class DeviceError(AppatlasError):
    def __init__(self, message: str, *, serial: str = "") -> None:
        self.serial = serial
        super().__init__(message)


class DeviceDisconnected(DeviceError):
    pass


class DeviceTimeout(DeviceError):
    pass


class AppCrashed(DeviceError):
    pass


class UiServerDied(DeviceError):
    pass


class SelectorNotFound(DeviceError):
    pass


class ActionRefused(DeviceError):
    pass
