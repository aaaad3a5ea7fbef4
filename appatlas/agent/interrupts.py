"""Common interruptions and the one action that gets past each.

    permission dialog      "Allow" / "While using the app"   (the test needs what it asks for)
    rate us / update / ad  "Not now" / "Later" / "No thanks"  (never rate, update or buy during a test)
    soft keyboard          back                               (when no field is being typed into)

They are handled before the model is asked, because a screen like this says nothing about the
intent and a small model tends to press the wrong button.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appatlas.agent.options import Option, is_dialog, options
from appatlas.types import Screen

__all__ = ["Interruption", "interruption"]

PERMISSION_PACKAGES = ("com.android.permissioncontroller", "com.google.android.permissioncontroller",
                       "com.android.packageinstaller")
KEYBOARD_PACKAGES = ("com.google.android.inputmethod.latin", "com.android.inputmethod.latin",
                     "com.samsung.android.honeyboard", "com.touchtype.swiftkey")
_ALLOW = re.compile(r"^(allow|while using the app|only this time|allow all|allow access)$", re.IGNORECASE)
_PROMPT = re.compile(r"\b(rate (us|this app)|enjoying|love this app|update available|new version|upgrade now|"
                     r"go premium|try premium|subscribe|sign up for)\b", re.IGNORECASE)
_DISMISS = re.compile(r"^(not now|later|maybe later|remind me later|no,? thanks|no thank you|skip|dismiss|close|"
                      r"never|cancel)$", re.IGNORECASE)


@dataclass(frozen=True)
class Interruption:
    kind: str  # "permission" | "prompt" | "keyboard"
    option: Option
    reason: str


def interruption(screen: Screen) -> Interruption | None:
    """The interruption `screen` shows and the option that gets past it, or None."""
    opts = options(screen, scroll=False)
    texts = " ".join(screen.texts)
    permission = screen.package in PERMISSION_PACKAGES or (
        is_dialog(screen) and re.search(r"\ballow\b.*\bto (access|take|record|send|make)\b", texts, re.IGNORECASE))
    if permission:
        allow = next((o for o in opts if _ALLOW.match(o.label.strip())), None)
        if allow is not None:
            return Interruption("permission", allow, f"a permission dialog: '{allow.label}' grants what the app asks")
    if is_dialog(screen) and _PROMPT.search(texts):
        dismiss = next((o for o in opts if _DISMISS.match(o.label.strip())), None)
        if dismiss is not None:
            return Interruption("prompt", dismiss, f"a rate/update prompt: '{dismiss.label}' dismisses it")
    keyboard = any(w.package in KEYBOARD_PACKAGES for w in screen.widgets())
    if keyboard and not any(w.focused and w.editable for w in screen.widgets()):
        back = opts[-1]
        return Interruption("keyboard", back, "the keyboard is open with no field focused: back closes it")
    return None
