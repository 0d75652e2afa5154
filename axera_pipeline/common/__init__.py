"""Shared by every side, standard library only: atomic output, manifests, CLI errors, log tee, checkpoints."""
