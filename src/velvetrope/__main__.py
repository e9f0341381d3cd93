"""``python -m velvetrope`` runs the command line."""

from velvetrope.cli import main

main()
