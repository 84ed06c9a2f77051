"""The ``cadmetrics`` subcommands (contract, scan, extract, vectors, drift, check): the
command-line layer over the library's public functions, beside ``cli.py``."""
