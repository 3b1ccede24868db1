"""Bradley-Terry reward models trained on pairwise preferences.

Arrives with the reward-model issue.
"""
