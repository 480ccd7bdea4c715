"""Command-line interface: one module per subcommand, wired by :mod:`reconciler.cli.main`."""
