"""Test and demo tooling, kept apart from the runtime: private mail servers, the demo."""
