"""Model backends: each sends a Prompt to one provider and returns a ModelReply."""
