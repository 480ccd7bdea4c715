"""`reconciler import`: turn a node built by hand into a desired-state directory."""
