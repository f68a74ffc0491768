"""`carinho`: the hub's command line (topics, keys, services, operators' tools)."""
