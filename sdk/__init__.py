"""agentledger: what each correct outcome of your LLM agent costs, and where the tokens go."""
