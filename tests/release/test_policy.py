"""The release policy's decisions: licence classes, the stricter side wins, unknown fails closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emoforge.configs.release import ConsentActions, LicenceActions, ReleasePolicy
from emoforge.configs.terms import CONSENTS, MEDIA_ACTIONS
from emoforge.release.policy import PolicyGate, licence_class
from emoforge.release.pseudonyms import SpeakerHasher, corpus_salt
from emoforge.storage.records import Terms

OPEN = ReleasePolicy().open_licences


@pytest.mark.parametrize(
    ("licence", "klass"),
    [
        ("CC-BY-4.0", "open"),
        ("cc0-1.0", "open"),
        ("CC-BY-NC-SA-4.0", "noncommercial"),  # RAVDESS, nEMO
        ("CC BY-NC 4.0", "noncommercial"),
        ("Creative Commons Attribution-NonCommercial", "noncommercial"),
        ("research only (MER2023 EULA)", "restricted"),
        ("GPL-3.0", "restricted"),  # MELD's repository licence says nothing about the clips' reuse
        ("none", "restricted"),  # a talk show: no licence means all rights reserved
        ("CC-BY-ND-4.0", "restricted"),
        (None, "unknown"),
        ("", "unknown"),
        (" Unknown ", "unknown"),
    ],
)
def test_licence_classes(licence: str | None, klass: str) -> None:
    assert licence_class(licence, OPEN) == klass


def test_default_policy_per_class() -> None:
    gate = PolicyGate(ReleasePolicy())
    assert gate.decide(Terms(licence="CC-BY-4.0", consent="publish")).action == "link"
    assert gate.decide(Terms(licence="CC-BY-NC-SA-4.0", consent="publish")).action == "link"
    assert gate.decide(Terms(licence="none", consent="publish")).action == "features"
    assert gate.decide(Terms(licence="CC-BY-4.0", consent="research")).action == "features"
    assert gate.decide(Terms(licence="CC-BY-4.0", consent="none")).action == "withhold"
    refused = gate.decide(Terms(licence="CC-BY-4.0"))  # consent unknown
    assert (refused.action, refused.reason) == ("withhold", "terms_unknown")
    refused = gate.decide(Terms(consent="publish"))  # licence unknown
    assert (refused.action, refused.reason) == ("withhold", "terms_unknown")
    allowed = PolicyGate(ReleasePolicy(), allow_unknown=True).decide(Terms(consent="publish"))
    assert (allowed.action, allowed.reason) == ("features", "allow_unknown")


actions = st.sampled_from(MEDIA_ACTIONS)
policies = st.builds(
    ReleasePolicy,
    consent=st.builds(ConsentActions, publish=actions, research=actions, none=actions),
    licence=st.builds(LicenceActions, open=actions, noncommercial=actions, restricted=actions),
    unknown=actions,
)
terms = st.builds(
    Terms,
    licence=st.sampled_from([None, "CC-BY-4.0", "CC-BY-NC-4.0", "research only"]),
    consent=st.sampled_from(CONSENTS),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(policies, terms, st.booleans())
def test_a_row_gets_the_stricter_of_its_consent_and_licence(policy: ReleasePolicy, t: Terms, allow: bool) -> None:
    d = PolicyGate(policy, allow_unknown=allow).decide(t)
    klass = licence_class(t.licence, policy.open_licences)
    if (t.consent == "unknown" or klass == "unknown") and not allow:
        assert d.action == "withhold" and d.reason == "terms_unknown"
        return
    by_consent = policy.unknown if t.consent == "unknown" else getattr(policy.consent, t.consent)
    by_licence = policy.unknown if klass == "unknown" else getattr(policy.licence, klass)
    rank = MEDIA_ACTIONS.index
    assert rank(d.action) == max(rank(by_consent), rank(by_licence))  # never more than either side allows


def test_speaker_hashes_are_stable_per_corpus_and_unlinkable_across(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    salt_a = corpus_salt(a)
    assert corpus_salt(a) == salt_a and len(salt_a) == 32  # made once, then read back
    assert corpus_salt(b) != salt_a
    assert (tmp_path / "a" / "speaker-salt").stat().st_mode & 0o077 == 0  # only its owner may read it
    h_a, h_b = SpeakerHasher(salt_a), SpeakerHasher(corpus_salt(b))
    assert h_a("Actor_01") == SpeakerHasher(corpus_salt(a))("Actor_01")
    assert h_a("Actor_01") != h_b("Actor_01") and h_a("Actor_01") != h_a("Actor_02")
    assert h_a("Actor_01").startswith("spk-") and len(h_a("Actor_01")) == 20
    assert h_a(None) is None
