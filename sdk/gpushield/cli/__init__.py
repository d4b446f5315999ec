"""The `gpushield` command line: run the local gate, manage keys, run the demo."""
