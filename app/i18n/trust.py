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
    "err.preview_not_found": "Vorschau {id} wurde nicht gefunden.",
    "ui.pv_failed": "Die Vorschau ist fehlgeschlagen; bitte erneut versuchen.",
    "ui.pv_timeout": "Die Vorschau wurde nach {seconds} s abgebrochen: sie hätte länger "
    "gedauert, als ein Auftrag dauern darf (WORKER_JOB_TIMEOUT_S); erhöhen Sie diesen Wert für "
    "so viele Adressen.",
    "ui.pv_button": "Vorschau (nichts wird geschrieben)",
    "ui.pv_title": "Vorschau #{id}",
    "ui.pv_intro": "Die Vorschau liest onOffice und die Liste beim Dienst und zeigt, was eine "
    "Synchronisation jetzt mit jeder Adresse täte. Sie schreibt nichts, weder nach onOffice "
    "noch zum Dienst.",
    "ui.pv_first": "Die Liste bei {provider} hat bereits {count} angemeldete Kontakte und wurde "
    "noch nie synchronisiert. Sehen Sie sich zuerst die Vorschau an: Sie zeigt, wen die erste "
    "Synchronisation hinzufügt, ändert oder abmeldet und was nach onOffice zurückgeschrieben "
    "wird. Exportieren Sie die Liste vorher bei {provider}.",
    "ui.pv_running": "Die Vorschau liest beide Seiten …",
    "ui.pv_done": "So würde eine Synchronisation jetzt enden. Es wurde nichts geschrieben.",
    "ui.pv_filter": "Ergebnis",
    "ui.pv_filter_all": "alle Adressen",
    "ui.pv_csv": "Als CSV herunterladen",
    "ui.pv_none": "Keine Adressen für diesen Filter.",
    "ui.pv_col_outcome": "Ergebnis",
    "ui.pv_col_write": "Schreibt nach onOffice",
    "ui.pv_written_back": "Nach onOffice zurückgeschrieben",
    "ui.pv_unsubscribed": "Würden abgemeldet (nicht mehr Newsletter Ja)",
    "ui.pv_held": "Würden zurückgehalten (Sicherheitsventil)",
    "ui.pv_out_created": "neu hinzugefügt",
    "ui.pv_out_updated": "aktualisiert",
    "ui.pv_out_unchanged": "unverändert",
    "ui.pv_out_duplicate": "doppelt",
    "ui.pv_out_invalid_email": "ungültige E-Mail",
    "ui.pv_out_missing_email": "keine E-Mail",
    "ui.pv_out_rejected": "abgelehnt",
    "ui.pv_out_opted_out": "abgemeldet",
    "ui.pv_out_pending_optin": "Double-Opt-In offen",
    "ui.pv_out_bounced": "unzustellbar",
    "ui.pv_out_archived": "beim Dienst archiviert",
    "ui.pv_write_no": "Newsletter: Nein",
    "ui.pv_write_activity": "nur eine Aktivität (Wert bleibt)",
    "ui.att_title": "Braucht Ihre Aufmerksamkeit",
    "ui.att_none": "Alles in Ordnung: nichts wartet auf Sie.",
    "ui.att_held_unsubscribes": "{count} Abmeldungen von Synchronisation #{run} sind vom "
    "Sicherheitsventil zurückgehalten.",
    "ui.att_held_unsubscribes_do": "Prüfen Sie die Liste unter „Status“ und bestätigen Sie die "
    "Abmeldungen, oder korrigieren Sie onOffice und starten Sie die Synchronisation neu.",
    "ui.att_held_events": "{provider} meldete {count} Archivierungen oder Löschungen auf einmal "
    "(„Archive All“); sie sind zurückgehalten.",
    "ui.att_held_events_do": "Übernehmen Sie sie, wenn das gewollt war, sonst verwerfen Sie sie "
    "(unter „Status“).",
    "ui.att_first_sync": "Die Liste bei {provider} hat bereits {count} angemeldete Kontakte, "
    "synchronisiert wurde noch nie.",
    "ui.att_first_sync_do": "Starten Sie zuerst die Vorschau: Sie zeigt ohne zu schreiben, was "
    "die erste Synchronisation ändern würde. Exportieren Sie die Liste vorher.",
    "ui.att_failed_run": "Synchronisation #{run} ist fehlgeschlagen: {error}",
    "ui.att_failed_run_do": "Beheben Sie die genannte Ursache (Statusseite des Dienstes) und "
    "starten Sie die Synchronisation erneut; bereits Gesendetes wird nicht doppelt gesendet.",
    "ui.att_webhook": "Der Webhook bei {provider} funktioniert nicht: {error}",
    "ui.att_webhook_do": "Prüfen Sie den API-Schlüssel, speichern Sie die Verbindung erneut und "
    "lassen Sie den Webhook prüfen. Bis dahin gleicht der Abgleich alle 15 Minuten nach.",
    "ui.att_provider_key": "{provider} hat den API-Schlüssel abgelehnt.",
    "ui.att_provider_key_do": "Speichern Sie einen gültigen API-Schlüssel unter „Verbindung“.",
    "ui.att_reconcile_failed": "Der Abgleich mit {provider} schlug fehl: {error}",
    "ui.att_reconcile_failed_do": "Prüfen Sie die Statusseite des Dienstes; der Abgleich wird "
    "automatisch wiederholt.",
    "ui.att_failed_events": "{count} Meldungen von {provider} konnten nicht nach onOffice "
    "geschrieben werden.",
    "ui.att_failed_events_do": "Prüfen Sie, ob onOffice erreichbar ist und der Connector die "
    "Rechte hat; die nächste Synchronisation schreibt die Abmeldungen erneut.",
    "ui.att_scope_waiting": "Gruppe ohne Anmeldung: {waiting}",
    "ui.att_scope_waiting_do": "Bitten Sie einen Benutzer der Gruppe, den Connector in onOffice "
    "einmal zu öffnen.",
    "ui.att_drift": "Bei {provider} sind {count} Kontakte angemeldet, {drift} gegenüber dem, "
    "was der Connector erwartet.",
    "ui.att_drift_do": "Starten Sie eine Synchronisation. Bleibt die Abweichung, wurden Kontakte "
    "direkt bei {provider} angemeldet, die onOffice nicht kennt.",
    "ui.att_not_reconciled": "Die Zahlen von Synchronisation #{run} gehen nicht auf: {reason}",
    "ui.att_not_reconciled_do": "Starten Sie die Synchronisation erneut und prüfen Sie die "
    "Problemliste; bleibt es so, exportieren Sie sie für den Support.",
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
    "err.preview_not_found": "preview {id} not found",
    "ui.pv_failed": "The preview failed; please try again.",
    "ui.pv_timeout": "The preview was stopped after {seconds} s: it would have taken longer "
    "than a job may (WORKER_JOB_TIMEOUT_S); raise that setting for this many addresses.",
    "ui.pv_button": "Preview (nothing is written)",
    "ui.pv_title": "Preview #{id}",
    "ui.pv_intro": "The preview reads onOffice and the service's list and shows what a "
    "synchronisation would do with every address now. It writes nothing, neither to onOffice "
    "nor to the service.",
    "ui.pv_first": "The list at {provider} already has {count} subscribed contacts and has never "
    "been synchronised. Look at the preview first: it shows whom the first synchronisation "
    "adds, changes or unsubscribes and what is written back to onOffice. Export the list at "
    "{provider} before.",
    "ui.pv_running": "The preview is reading both sides …",
    "ui.pv_done": "This is how a synchronisation would end now. Nothing was written.",
    "ui.pv_filter": "Outcome",
    "ui.pv_filter_all": "all addresses",
    "ui.pv_csv": "Download as CSV",
    "ui.pv_none": "No addresses for this filter.",
    "ui.pv_col_outcome": "Outcome",
    "ui.pv_col_write": "Writes to onOffice",
    "ui.pv_written_back": "Written back to onOffice",
    "ui.pv_unsubscribed": "Would be unsubscribed (no longer newsletter Yes)",
    "ui.pv_held": "Would be held back (safety valve)",
    "ui.pv_out_created": "added",
    "ui.pv_out_updated": "updated",
    "ui.pv_out_unchanged": "unchanged",
    "ui.pv_out_duplicate": "duplicate",
    "ui.pv_out_invalid_email": "invalid email",
    "ui.pv_out_missing_email": "no email",
    "ui.pv_out_rejected": "rejected",
    "ui.pv_out_opted_out": "opted out",
    "ui.pv_out_pending_optin": "double opt-in pending",
    "ui.pv_out_bounced": "bounced",
    "ui.pv_out_archived": "archived at the service",
    "ui.pv_write_no": "Newsletter: No",
    "ui.pv_write_activity": "an activity only (the value stays)",
    "ui.att_title": "Needs your attention",
    "ui.att_none": "All is well: nothing waits for you.",
    "ui.att_held_unsubscribes": "{count} unsubscribes of synchronisation #{run} are held back "
    "by the safety valve.",
    "ui.att_held_unsubscribes_do": 'Check the list under "Status" and approve the '
    "unsubscribes, or correct onOffice and start the synchronisation again.",
    "ui.att_held_events": "{provider} reported {count} archives or deletions at once "
    '("Archive All"); they are held back.',
    "ui.att_held_events_do": "Apply them if that was intended, otherwise dismiss them (under "
    '"Status").',
    "ui.att_first_sync": "The list at {provider} already has {count} subscribed contacts and has "
    "never been synchronised.",
    "ui.att_first_sync_do": "Start the preview first: it shows, without writing anything, what "
    "the first synchronisation would change. Export the list before.",
    "ui.att_failed_run": "Synchronisation #{run} failed: {error}",
    "ui.att_failed_run_do": "Fix the cause named (the service's status page) and start the "
    "synchronisation again; what was sent is not sent twice.",
    "ui.att_webhook": "The webhook at {provider} does not work: {error}",
    "ui.att_webhook_do": "Check the API key, save the connection again and have the webhook "
    "checked. Until then the reconciliation catches up every 15 minutes.",
    "ui.att_provider_key": "{provider} rejected the API key.",
    "ui.att_provider_key_do": 'Save a valid API key under "Connection".',
    "ui.att_reconcile_failed": "The reconciliation with {provider} failed: {error}",
    "ui.att_reconcile_failed_do": "Check the service's status page; the reconciliation is "
    "tried again automatically.",
    "ui.att_failed_events": "{count} events from {provider} could not be written to onOffice.",
    "ui.att_failed_events_do": "Check that onOffice is reachable and the connector has the "
    "rights; the next synchronisation writes the opt-outs again.",
    "ui.att_scope_waiting": "Group without sign-in: {waiting}",
    "ui.att_scope_waiting_do": "Ask a user of the group to open the connector in onOffice once.",
    "ui.att_drift": "{provider} has {count} subscribed contacts, {drift} against what the "
    "connector expects.",
    "ui.att_drift_do": "Start a synchronisation. If the drift stays, contacts were subscribed "
    "at {provider} directly that onOffice does not know.",
    "ui.att_not_reconciled": "The numbers of synchronisation #{run} do not add up: {reason}",
    "ui.att_not_reconciled_do": "Start the synchronisation again and check the problem list; "
    "if it stays, export it for support.",
}
