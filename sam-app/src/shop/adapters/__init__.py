"""Adapters: the code that talks to AWS services on the domain's behalf."""
