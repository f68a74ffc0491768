"""Scheduled pulls from source systems' change feeds (topics.yaml `syncs`)."""
