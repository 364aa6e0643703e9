"""The periodic reconciliation (issue 18, item 2): every PROVIDER_RECONCILE_INTERVAL_S each
connection reads what changed at the provider since its watermark and feeds it through the path
of webhook events (`app.contacts.reconcile` decides, `app.contacts.ledger.store_reconciled`
stores, the webhook applier applies), so opt-outs, sign-ups and removals no webhook told reach
onOffice within one interval."""
