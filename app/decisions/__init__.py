"""Decisions with names (issue 20, item 4): what waits for a user — held unsubscribes, held
Archive-All bursts, contacts archived at the provider, failed events — listed person by person
(paged, searchable, CSV), and decided for all or a selection; each decision goes into the
consent history with the user's id."""
