"""Per-clip terms of use from manifests, folder terms files and the config's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emoforge.configs import ConfigError, load_config
from emoforge.configs.inputs import InputsConfig, TermsRule
from emoforge.storage.inputs import InputError, discover_inputs, refused_recording
from emoforge.storage.records import Terms
from emoforge.storage.terms import merge_terms


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """media/{ravdess/actor1/a.wav, ravdess/b.wav, talkshow/c.wav, d.wav}"""
    root = tmp_path / "media"
    for rel in ("ravdess/actor1/a.wav", "ravdess/b.wav", "talkshow/c.wav", "d.wav"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    return root


def _by_name(items: list) -> dict[str, Terms]:
    return {Path(i.uri).name: i.terms for i in items}


def test_manifest_columns_carry_terms(tmp_path: Path, media: Path) -> None:
    csv = media / "clips.csv"
    csv.write_text(
        "uri,speaker,licence,consent,attribution,source_url\n"
        "ravdess/b.wav,s1,CC-BY-NC-SA-4.0,Research,Livingstone & Russo,https://zenodo.org/record/1188976\n"
        "talkshow/c.wav,s2,,,,\n"
    )
    jsonl = media / "clips.jsonl"
    jsonl.write_text(json.dumps({"uri": "d.wav", "licence": "CC0-1.0", "consent": "publish"}) + "\n")
    terms = _by_name(discover_inputs([csv, jsonl], terms=InputsConfig()))
    assert terms["b.wav"] == Terms(
        licence="CC-BY-NC-SA-4.0",
        consent="research",  # case folded
        attribution="Livingstone & Russo",
        source_url="https://zenodo.org/record/1188976",
    )
    assert terms["c.wav"] == Terms()  # empty cells: unknown, never a default that passes
    assert terms["d.wav"] == Terms(licence="CC0-1.0", consent="publish")


def test_a_bad_consent_names_the_manifest_line(media: Path) -> None:
    csv = media / "clips.csv"
    csv.write_text("uri,consent\nd.wav,publish\nd.wav,yes please\n")
    with pytest.raises(InputError, match=r"clips.csv:3: consent 'yes please' is not one of publish, research"):
        discover_inputs([csv])


def test_folder_terms_files_nearest_first_then_config_rules(tmp_path: Path, media: Path) -> None:
    (media / "ravdess" / "terms.json").write_text(
        json.dumps({"licence": "CC-BY-NC-SA-4.0", "consent": "research", "attribution": "RAVDESS"})
    )
    (media / "ravdess" / "actor1" / "terms.json").write_text(json.dumps({"consent": "publish"}))
    rules = InputsConfig(
        terms={
            str(media): TermsRule(source_url="https://example.org/corpus", licence="none"),
            str(media / "talkshow"): TermsRule(consent="none"),
        }
    )
    terms = _by_name(discover_inputs([media], terms=rules))
    # actor1's file gives consent; ravdess's file the licence and credit; the root rule the URL.
    assert terms["a.wav"] == Terms(
        licence="CC-BY-NC-SA-4.0", consent="publish", attribution="RAVDESS", source_url="https://example.org/corpus"
    )
    assert terms["b.wav"] == Terms(
        licence="CC-BY-NC-SA-4.0", consent="research", attribution="RAVDESS", source_url="https://example.org/corpus"
    )
    # the deeper rule gives consent, the root rule what it leaves unset
    assert terms["c.wav"] == Terms(licence="none", consent="none", source_url="https://example.org/corpus")
    assert terms["d.wav"] == Terms(licence="none", source_url="https://example.org/corpus")
    # without the config, only the terms files speak
    assert _by_name(discover_inputs([media]))["a.wav"] == Terms()  # terms=None: manifest columns only
    assert _by_name(discover_inputs([media], terms=InputsConfig()))["d.wav"] == Terms()


def test_manifest_columns_win_over_folder_files(media: Path) -> None:
    (media / "ravdess" / "terms.json").write_text(json.dumps({"licence": "CC-BY-NC-SA-4.0", "consent": "research"}))
    csv = media / "clips.csv"
    csv.write_text("uri,consent\nravdess/b.wav,none\n")
    (item,) = discover_inputs([csv], terms=InputsConfig())
    assert item.terms == Terms(licence="CC-BY-NC-SA-4.0", consent="none")


def test_terms_files_above_the_input_root_are_not_read(tmp_path: Path, media: Path) -> None:
    (tmp_path / "terms.json").write_text(json.dumps({"consent": "publish"}))  # outside the folder given
    assert _by_name(discover_inputs([media / "ravdess"], terms=InputsConfig()))["b.wav"] == Terms()


def test_url_prefix_rules_and_refused_inputs(tmp_path: Path, media: Path) -> None:
    rules = InputsConfig(terms={"s3://bucket/meld/": TermsRule(licence="GPL-3.0", consent="research")})
    (remote, other) = discover_inputs(["s3://bucket/meld/x.mp4", "s3://bucket/other/y.mp4"], terms=rules)
    assert remote.terms == Terms(licence="GPL-3.0", consent="research") and other.terms == Terms()
    csv = media / "clips.csv"
    csv.write_text("uri,licence,consent\n../../outside.wav,CC0-1.0,publish\n")
    (refused,) = discover_inputs([csv], terms=InputsConfig())
    assert refused.refused is not None
    assert refused_recording(refused).terms == Terms(licence="CC0-1.0", consent="publish")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("[1, 2]", "must hold one JSON object"),
        ("{not json", "not a readable JSON terms file"),
        ('{"licence": "CC0-1.0", "licensee": "me"}', "unknown key\\(s\\) licensee"),
        ('{"consent": "maybe"}', "consent 'maybe' is not one of"),
    ],
)
def test_a_bad_terms_file_is_an_input_error(media: Path, content: str, error: str) -> None:
    (media / "talkshow" / "terms.json").write_text(content)
    with pytest.raises(InputError, match=error):
        discover_inputs([media], terms=InputsConfig())


def test_config_rules_are_validated_by_their_yaml_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inputs:\n  terms:\n    media/ravdess: {consent: sure}\n")
    with pytest.raises(ConfigError, match=r"inputs\.terms\.media/ravdess\.consent"):
        load_config(path)
    path.write_text("inputs:\n  terms:\n    media/ravdess: {consent: research, licence: CC-BY-NC-SA-4.0}\n")
    assert load_config(path).inputs.terms["media/ravdess"].consent == "research"


_terms = st.builds(
    Terms,
    licence=st.none() | st.sampled_from(["CC0-1.0", "none"]),
    consent=st.sampled_from(["publish", "research", "none", "unknown"]),
    attribution=st.none() | st.just("A"),
    source_url=st.none() | st.just("https://x"),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_terms, _terms, _terms)
def test_merge_keeps_what_is_given_and_is_associative(a: Terms, b: Terms, c: Terms) -> None:
    merged = merge_terms(a, b)
    for field in ("licence", "attribution", "source_url"):
        assert getattr(merged, field) == (getattr(a, field) or getattr(b, field))
    assert merged.consent == (a.consent if a.consent != "unknown" else b.consent)
    assert merge_terms(merge_terms(a, b), c) == merge_terms(a, merge_terms(b, c))
    assert merge_terms(a, Terms()) == a
