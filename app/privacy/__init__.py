"""Data protection: retention (what is purged when), erasure of one person, and the purge of a
cancelled customer. docs/data-protection.md lists every piece of personal data the service
stores, where, why and for how long."""
