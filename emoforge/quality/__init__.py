"""Label quality, apart from the annotators (crowd-kit's ``aggregation/`` beside ``metrics/``).

- ``consensus``: one segment's votes -> its label, confidence and review flags (phase 5).
- ``aggregation/``: the aggregators in crowd-kit's shape (``fit`` / ``predict`` /
  ``predict_proba``), each declaring its ``spec``, registered in ``AGGREGATORS``; the
  corpus-level run, and the pooled vote's weight fitting.
- ``aggregate``, ``corpus_stats``: the corpus workflows of ``emoforge aggregate``,
  ``emoforge agreement`` and ``emoforge review import``, which store their results in the
  corpus manifest.
- ``stats``: Krippendorff's alpha, Cohen's kappa, Spearman, ICC; ``agreement`` applies them
  to a corpus's annotations, ``human_agreement`` to machine vs human labels.
- ``calibration``: expected calibration error and reliability bins against human labels.
- ``label_quality``: how likely each consensus label is right (CROWDLAB), per segment and per
  corpus; ``review_priority`` orders the review queue by it (expected changes per minute).

Imports ``configs`` and ``storage`` only: aggregation needs votes, not the agents that cast them.
"""
