"""Two undecorated functions and no conventional name: fairaudit must refuse it."""


def helper_one(scores, rng):
    return [0]


def helper_two(scores, rng):
    return [1]
