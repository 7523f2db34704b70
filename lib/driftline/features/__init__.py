"""Feature preparation: specs live in `spec`."""
