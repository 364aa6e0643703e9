"""The consent history per person: every consent signal and every action of the connector per
email of a connection (`writer.py` records, `router.py` answers "why is … (not) subscribed?")."""
