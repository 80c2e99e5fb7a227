"""Reward: format gate -> answer extraction -> rule check -> verifier model."""
