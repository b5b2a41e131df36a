"""``python -m synthmed`` (what torchrun launches: ``torchrun ... -m synthmed train ...``)."""

from synthmed.cli import main

main()
