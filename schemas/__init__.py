"""The wire contract of agentledger: attribute names, storage DDL and API models.

Everything that the SDK, the collector and the dashboard must agree on lives here, and
only here. See ``schemas/README.md`` for the meaning of each name.
"""
