"""Retrain policy, the retrain job and its decision table."""
