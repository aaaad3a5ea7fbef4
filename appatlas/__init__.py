"""appatlas: explore a mobile app into an atlas of its screens, plan tests from intents, run them offline."""

__version__ = "0.1.0"
