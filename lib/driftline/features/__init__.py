"""Feature preparation (issue [features]): specs live in `spec`."""
