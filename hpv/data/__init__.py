"""Training and evaluation data: signer videos paired with their poses, and real pose files."""
