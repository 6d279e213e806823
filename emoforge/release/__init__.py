"""Release: group-aware splits, the Parquet release and its dataset card, evaluation of
submitted answers, and the corpus report. It reads the corpus through ``emoforge.storage``
and the agreement and calibration statistics from ``emoforge.agents``, so it sits above both."""
