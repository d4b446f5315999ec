"""One module per check the gate makes; `pipeline.py` lists them in order."""
