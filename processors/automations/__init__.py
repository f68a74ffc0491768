"""Automations from topics.yaml `automations`: lead auto-reply and the delayed feedback request."""
