"""One module per `nas` command: parse options, call the core, render with rich."""
