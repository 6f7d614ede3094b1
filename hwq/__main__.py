"""``python -m hwq`` runs the command-line interface."""

from hwq.cli.main import main

raise SystemExit(main())
