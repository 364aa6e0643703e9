"""The connection's lifecycle: a run can be cancelled, nothing changes under a running sync,
what the provider said is not lost when the list changes or the connection goes, and the
safety valve's held unsubscribes are exactly the set the run held."""
