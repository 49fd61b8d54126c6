# Developer and CI entry points. `make deps test` is what .ci/run does.
PYTHON ?= python
APT_PACKAGES := dovecot-imapd dovecot-lmtpd

.PHONY: deps test

# Dovecot is only installed when missing, so a warm machine stays fast. The Debian
# package may start a system service on a systemd host; the tests never use it.
deps:
	@set -e; if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_PACKAGES); \
		if command -v systemctl >/dev/null 2>&1; then \
			systemctl disable --now dovecot.service dovecot.socket 2>/dev/null || true; \
		fi; \
	fi
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'

test:
	$(PYTHON) -m ruff check inboxwatch tests
	$(PYTHON) -m ruff format --check inboxwatch tests
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q
