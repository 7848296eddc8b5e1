"""Messages between party nodes and the coordinator, through the consortium object store."""
