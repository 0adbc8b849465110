"""Studies: the essay's experiments and makemore's own, as library calls returning data.

reproduce (the essay's table), leaderboard, ensembles, diagnose (init bugs), BatchNorm's modes,
backprop by hand, the essay's claims measured, and plots (the optional `plot` extra).
Imports every layer below the front ends.
"""
