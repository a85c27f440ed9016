"""The generic trainer, its configuration and checkpoints."""
