"""The edges: the mailbox (IMAP), the sender (SMTP) and the state store (TinyDB).

Each sits behind a narrow interface in :mod:`inboxwatch.adapters.ports` and has an
in-memory twin (:mod:`~inboxwatch.adapters.memory_mail`,
:mod:`~inboxwatch.adapters.memory_store`); ``tests/contract/`` runs one suite over both.
"""
