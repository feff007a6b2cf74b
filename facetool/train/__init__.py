"""The training engine (checkpoints, resume, loops) shared by every method."""
