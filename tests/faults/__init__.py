"""Fault tests against the real server process: SIGKILL under load, SIGTERM, a locked database."""
