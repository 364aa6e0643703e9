"""Texts of the onOffice access check (app/connections/access.py) and the webhook address
rotation, in both languages (kept apart from de.py/en.py, which are full)."""

from __future__ import annotations

from typing import Final

DE: Final[dict[str, str]] = {
    "ui.s_onoffice_access": "Zugriff auf onOffice",
    "ui.s_onoffice_access_ok": "in Ordnung",
    "ui.s_onoffice_refused": "onOffice verweigert den Zugriff seit {time} ({why}). Der Anbieter "
    "wurde im onOffice Marketplace gesperrt, das Abonnement gekündigt oder der API-Benutzer "
    "gelöscht bzw. deaktiviert. Die Synchronisation ruht; Änderungen aus {provider} werden "
    "aufbewahrt. Sie läuft von selbst weiter, sobald onOffice den Zugriff wieder erlaubt "
    "(geprüft alle {minutes} Minuten und bei „Änderungen jetzt abrufen“); sonst aktivieren Sie "
    "den Connector erneut im onOffice Marketplace.",
    "ui.rotate_webhook": "Webhook-Adresse erneuern",
    "ui.rotate_webhook_hint": "Erzeugt eine neue geheime Adresse, trägt sie bei {provider} ein "
    "und löscht die alte sofort. Nötig, wenn die Adresse bekannt geworden ist.",
    "ui.rotating_webhook": "Wird erneuert …",
    "ui.webhook_rotated": "Neue Webhook-Adresse eingetragen; die alte wird abgewiesen.",
    "run.onoffice_access_refused": "onOffice verweigert den Zugriff ({detail}): Der Anbieter "
    "wurde im onOffice Marketplace gesperrt, das Abonnement gekündigt oder der API-Benutzer "
    "gelöscht. Aktivieren Sie den Connector erneut im Marketplace.",
    "err.onoffice_access_refused": "onOffice verweigert dem Connector derzeit den Zugriff "
    "(Anbieter gesperrt, Abonnement gekündigt oder API-Benutzer gelöscht); die "
    "Synchronisation ruht, bis onOffice den Zugriff wieder erlaubt. Siehe Status.",
    "err.webhook_rotate_failed": "Die alte Webhook-Adresse konnte bei {provider} nicht gelöscht "
    "werden ({detail}); es bleibt bei der bisherigen Adresse. Bitte später erneut versuchen.",
}

EN: Final[dict[str, str]] = {
    "ui.s_onoffice_access": "Access to onOffice",
    "ui.s_onoffice_access_ok": "OK",
    "ui.s_onoffice_refused": "onOffice has refused access since {time} ({why}). The provider "
    "was locked in the onOffice Marketplace, the subscription cancelled, or the API user "
    "deleted or deactivated. Syncing is paused; changes from {provider} are kept. It resumes "
    "by itself as soon as onOffice allows access again (checked every {minutes} minutes and "
    "on “Check for changes now”); otherwise activate the connector again in the onOffice "
    "Marketplace.",
    "ui.rotate_webhook": "Renew webhook address",
    "ui.rotate_webhook_hint": "Creates a new secret address, registers it at {provider} and "
    "deletes the old one at once. Use it when the address has leaked.",
    "ui.rotating_webhook": "Renewing …",
    "ui.webhook_rotated": "New webhook address registered; the old one is refused.",
    "run.onoffice_access_refused": "onOffice refuses access ({detail}): the provider was "
    "locked in the onOffice Marketplace, the subscription cancelled, or the API user deleted. "
    "Activate the connector again in the Marketplace.",
    "err.onoffice_access_refused": "onOffice currently refuses the connector's access "
    "(provider locked, subscription cancelled or API user deleted); syncing is paused until "
    "onOffice allows access again. See the status.",
    "err.webhook_rotate_failed": "The old webhook address could not be deleted at {provider} "
    "({detail}); the previous address stays. Please try again later.",
}
