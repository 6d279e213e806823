"""Offline recognizers: trained models that vote in the jury, one modality each.

Unlike the cue rules (``agents/cues``), which stay available as agents and as judge
evidence, these are classifiers fitted on human-labelled data with a confidence that was
calibrated on speakers or lines they never saw. Each ships small weights in ``weights/``
with the script in ``benchmarks/`` that reproduces them; ``AgentConfig.model`` points an
agent at other weights of the same format.
"""
