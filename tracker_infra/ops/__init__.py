"""Commands that talk to the live environments (AWS): each module is one render.py subcommand."""
