"""Typed errors of the compression module; each message names the next step."""

from __future__ import annotations


class CompressionError(Exception):
    """Base class of every error raised by ``appatlas.compression``."""


class ModelNotFound(CompressionError):
    """No causal LM could be located for the given name or folder."""


class UnsupportedModel(CompressionError):
    """The model's architecture has no layer-group table (see ``families.py``)."""


class CalibrationError(CompressionError):
    """Calibration or evaluation text is missing or too short."""


class FormatError(CompressionError):
    """A compressed folder is missing files or has an unknown manifest."""


class ConfigError(CompressionError):
    """An option combination that cannot work (e.g. 2:4 with sparsity 0.3)."""


class KernelError(CompressionError):
    """An int4 kernel was asked for that this CPU cannot run, or that could not be built here."""
