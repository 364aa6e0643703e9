"""Developer kit: the local demo on emulated onOffice, Mailchimp and Brevo.

Not part of the product: `app/` never imports it; the `connector demo` / `connector run`
commands load it lazily.
"""
