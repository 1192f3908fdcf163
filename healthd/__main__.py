"""``python -m healthd``."""

from healthd.cli import main

main()
