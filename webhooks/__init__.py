"""Inbound events: the receiver contract, Standard Webhooks signing, one folder per tracker."""
