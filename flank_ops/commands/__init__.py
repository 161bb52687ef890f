"""One module per `flank` verb: add_arguments(parser) and run(args) -> int."""
