"""The edges: the mailbox (IMAP), the sender (SMTP) and the state store (TinyDB).

Each sits behind a narrow interface in :mod:`inboxwatch.adapters.ports` and has an
in-memory twin in :mod:`inboxwatch.adapters.memory`; one contract suite runs over both.
"""
