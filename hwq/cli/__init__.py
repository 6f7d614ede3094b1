"""Command-line interface: ``hwq <command>``. Each command lives in its own module here,
exposing ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``."""
