"""Data quality: schema contracts, checks, quarantine."""
