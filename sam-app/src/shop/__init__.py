"""The shop's domain package: event models, order rules, adapters and Lambda handlers."""
