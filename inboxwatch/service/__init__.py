"""The shell: the daemon's loop, the outbox that owns delivery, and the commands."""
