"""Undecorated: the kind (selection) is inferred from the parameter k."""


def choose(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)
