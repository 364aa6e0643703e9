"""The sync preview (issue 20): `POST /api/v1/syncs {"dry_run": true}` decides every address as
a full sync would and writes nothing to onOffice or the provider (`run.py`); the counts and the
per-address list are read through `/api/v1/previews/{id}` (`router.py`, `service.py`)."""
