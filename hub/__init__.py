"""Shared by every service: envelope, topology, settings, Kafka client config, logging, metrics."""
