"""Texts of issue 20's trust features in German and English (merged into the catalogue):
why the totals do (not) reconcile (`ui.rec_*`), the extra run-card categories, the preview
(`ui.pv_*`) and the "needs attention" panel (`ui.att_*`)."""

from __future__ import annotations

DE: dict[str, str] = {
    "ui.unknown": "noch offen",
    "ui.rec_not_finished": "Die Synchronisation läuft noch.",
    "ui.rec_not_completed": "Die Synchronisation ist {status}; ihre Zahlen sind unvollständig.",
    "ui.rec_sum": "Die Kategorien ergeben {sum}, verarbeitet wurden {processed} Adressen.",
    "ui.rec_held": "{held} Abmeldungen sind zurückgehalten und warten auf Ihre Entscheidung.",
    "ui.rec_onoffice_total_unknown": "onOffice hat keine Gesamtzahl gemeldet.",
    "ui.rec_onoffice_total": "onOffice meldete {total} Adressen, verarbeitet wurden {processed}.",
    "ui.rec_provider_unknown": "Die Zahl der angemeldeten Kontakte beim Dienst ist unbekannt "
    "(die Abfrage schlug fehl).",
    "ui.rec_drift": "Beim Dienst sind {count} Kontakte angemeldet, {drift} gegenüber dem, was "
    "der Connector erwartet.",
    "ui.c_reported": "Von onOffice gemeldet",
    "ui.c_out_of_scope": "Außerhalb des Bereichs dieser Verbindung",
    "ui.c_opted_out": "Abgemeldet (nicht gesendet; nach onOffice zurückgeschrieben)",
    "ui.c_pending_optin": "Double-Opt-In noch nicht bestätigt",
    "ui.c_held_unsubscribes": "Zurückgehaltene Abmeldungen",
    "ui.c_provider_subscribed": "Beim Dienst angemeldet (nach dem Lauf)",
    "ui.c_drift": "Abweichung zum Dienst",
}

EN: dict[str, str] = {
    "ui.unknown": "not yet known",
    "ui.rec_not_finished": "The synchronisation is still running.",
    "ui.rec_not_completed": "The synchronisation is {status}; its numbers are incomplete.",
    "ui.rec_sum": "The categories add up to {sum}, but {processed} addresses were processed.",
    "ui.rec_held": "{held} unsubscribes are held back and wait for your decision.",
    "ui.rec_onoffice_total_unknown": "onOffice did not report a total.",
    "ui.rec_onoffice_total": "onOffice reported {total} addresses, {processed} were processed.",
    "ui.rec_provider_unknown": "The service's count of subscribed contacts is unknown "
    "(the request failed).",
    "ui.rec_drift": "The service has {count} subscribed contacts, {drift} against what the "
    "connector expects.",
    "ui.c_reported": "Reported by onOffice",
    "ui.c_out_of_scope": "Outside this connection's scope",
    "ui.c_opted_out": "Opted out (not sent; written back to onOffice)",
    "ui.c_pending_optin": "Double opt-in not confirmed yet",
    "ui.c_held_unsubscribes": "Unsubscribes held back",
    "ui.c_provider_subscribed": "Subscribed at the service (after the run)",
    "ui.c_drift": "Drift against the service",
}
