"""`python -m mlops.cli`: the same as the `mlops` console script."""

from mlops.cli import main

main()
