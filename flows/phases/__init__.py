"""The phases, one module each (``flows/phase.py`` says what a phase is); ``PIPELINE``
(``flows/pipeline.py``) orders them."""
