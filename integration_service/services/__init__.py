"""Business rules.  Views call these; they never talk HTTP to platforms themselves."""
