"""inboxwatch: lead follow-up from a business's email inbox."""

__version__ = "0.1.0.dev0"
