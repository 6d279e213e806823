"""Inputs config: the terms of use a clip gets when its manifest row does not give them."""

from pydantic import Field

from emoforge.configs.base import Section
from emoforge.configs.terms import Consent


class TermsRule(Section):
    """Terms for every input under a folder (or URL prefix); unset fields stay unknown."""

    licence: str | None = Field(None, description="SPDX id (CC-BY-4.0) or free text ('research only').")
    consent: Consent | None = Field(None, description="publish | research | none | unknown.")
    attribution: str | None = Field(None, description="Who must be credited, as the licence asks.")
    source_url: str | None = Field(None, description="Where the media can be obtained legitimately.")


class InputsConfig(Section):
    terms: dict[str, TermsRule] = Field(
        default_factory=dict,
        description="Folder (absolute, or relative to the working directory) or URL prefix -> terms of every input "
        "under it; the deepest match wins, field by field, below a manifest's columns and a folder's terms file.",
    )
    terms_file: str = Field(
        "terms.json",
        description="A JSON object with licence / consent / attribution / source_url in a media folder gives the "
        "terms of every file under it (the nearest one wins, field by field); empty: no folder rules.",
    )
