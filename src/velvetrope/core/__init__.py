"""Core: users and passwords, sessions, tokens, CSRF tokens, devices and the service.

No web framework, no settings and no store backend is imported here (enforced by
import-linter; see docs/architecture.md).
"""
