"""Human review: agreement of human verifications with the consensus and with each agent."""
