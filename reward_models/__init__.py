"""Bradley-Terry reward models trained on pairwise preferences (arrives with the reward-model issue)."""
