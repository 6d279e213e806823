"""Offline cue agents: face (AU prototypes), voice (prosody), text (lexicon + embeddings)."""
