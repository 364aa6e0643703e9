"""The inbox: every received event (`inbound_event`) stored before it is acknowledged, and
drained per connection by one owner at a time (one floor below the domains).

Two streams share it: the provider events (Mailchimp, Brevo, and the write-backs stored like
them), applied to onOffice by `app/webhooks/`, and onOffice's "address saved" events, pushed to
the provider by `app/incremental/`. Both drain alike: a kick claims the connection's flag
(`owner.py`) and enqueues the stream's drain job (`jobs.py`); the job works as the owner
(`drain.py`: the frame), takes the connection's pending events in arrival order and hands over,
releases or is retried. `repository.py` holds every query on the table (but the webhooks'
bursts), `writer.py` the webhooks' group commit, `events.py` the store (only a new event
enqueues work) and the stamp of a handled group of events.
"""
