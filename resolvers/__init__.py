"""GraphQL request handlers (seed resource api-n8k2)."""
