"""The vocabulary of a clip's terms of use, shared by the inputs that carry them and the release
policy that obeys them.

A clip is published under a *licence* (an SPDX id such as ``CC-BY-NC-SA-4.0``, or free text
such as ``research only``) and the *consent* of the people in it; each has a class the release
policy maps to what may leave the building (``MediaAction``). ``unknown`` is a value, never a
default that passes: a release refuses rows whose terms are unknown unless told otherwise.
"""

from typing import Literal, get_args

Consent = Literal["publish", "research", "none", "unknown"]
"""publish: the person agreed to publication of their face and voice; research: to research use
only; none: no consent (or withdrawn); unknown: nobody recorded it."""

CONSENTS: tuple[str, ...] = get_args(Consent)

LicenceClass = Literal["open", "noncommercial", "restricted", "unknown"]
"""open: a listed redistributable licence (``release.policy.open_licences``); noncommercial: a
Creative Commons NC licence; restricted: any other licence text (research-only, all rights
reserved, no licence at all); unknown: no licence given."""

LICENCE_CLASSES: tuple[str, ...] = get_args(LicenceClass)

MediaAction = Literal["copy", "link", "features", "withhold"]
"""What a release does with a row's media, most permissive first: copy the file into the
release, link to it (its source URL, else its path in the corpus), publish features only (labels,
transcript, no pixels or waveforms, no media reference), or withhold the row."""

MEDIA_ACTIONS: tuple[str, ...] = get_args(MediaAction)
