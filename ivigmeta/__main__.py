"""``python -m ivigmeta`` runs the command-line interface."""

from ivigmeta.cli import main

if __name__ == "__main__":
    main()
