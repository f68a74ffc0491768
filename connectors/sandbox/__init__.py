"""Local stand-ins for every destination, Z-API, the SMS provider and the sync source feeds
(`carinho sandbox`, 127.0.0.1:8090). See docs/connectors.md for the control API."""
