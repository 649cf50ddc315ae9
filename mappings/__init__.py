"""Tracker clients/projects -> accounting customers, the rate table, and mapping suggestions."""
