"""The ``cadmetrics`` subcommands that drive a component (scan, extract, vectors, drift,
check): the command-line layer over the components' public functions, beside ``cli.py``."""
