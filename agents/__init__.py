"""Agents that act in TransferFunction-v0: search baselines, SB3 PPO, the RLHF pipeline."""
