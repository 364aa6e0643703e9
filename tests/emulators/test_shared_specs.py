"""The emulators validate against the published specs: the specs must be found, or every
"zero spec violations" assertion in the suite would pass without checking anything."""

from __future__ import annotations

from emulators import brevo, mailchimp
from emulators._shared import shared_dir


def test_shared_specs_are_found() -> None:
    specs = shared_dir() / "specs"
    assert (specs / "brevo-v3.yml").is_file()
    assert mailchimp.SPEC_PATH.is_file()
    assert brevo.SPEC_PATH.is_file()


def test_mailchimp_emulator_validates_requests() -> None:
    app = mailchimp.create_app(mailchimp.MailchimpState())
    assert app is not None
    assert mailchimp.SPEC_PATH.exists()
