"""``python -m bayesflip …`` runs the command-line interface."""

from bayesflip.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
