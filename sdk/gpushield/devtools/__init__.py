"""Tools for running gpushield locally: the demo's gate server, a real RunPod worker process,
and the scenarios the demo and the end-to-end tests share. Not needed by applications."""
