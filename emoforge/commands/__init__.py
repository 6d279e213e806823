"""CLI sub-command modules; each exposes ``register(app)``."""
