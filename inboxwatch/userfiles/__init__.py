"""The files a user edits: the config, rules, sequences and templates, loaded and checked."""
