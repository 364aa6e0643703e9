"""The full sync: read onOffice pages, classify every address, fan out provider batches.

Shape of a run (every step is a short, idempotent job; state lives in the database):

* `sync.read` (`read.py`) reads the provider's list state once, then the onOffice pages from
  `sync_run.read_offset` for a time slice, then re-enqueues itself. Each page is one
  transaction (`classify.py`): problems recorded, duplicates resolved against the `contact`
  table (state in the database, so a million addresses need no memory), unchanged contacts
  counted, the rest written into one `sync_batch` whose job is enqueued after commit.
* `sync.upsert_batch` (`send.py`) sends one batch through the provider's bulk upsert and records
  one outcome per address in the same transaction that marks the batch done; a retried job finds
  the batch done and sends nothing.
* `sync.finalize` (`finish.py`) runs once reading is done and every batch finished: tags still to
  add are flushed (`tags.py`), stale contacts unsubscribed behind the safety valve, then the
  provider's tags flow back to onOffice (`pull.py`, `sync.pull_tags`) and the run is completed.
  The counts reconcile by construction: every address read ends in exactly one counter.

`common.py` holds what the steps share, `jobs.py` the job ids, `optouts.py` the consent re-check
before a batch.
"""
