"""Broken on purpose: imports a package that does not exist."""
import fairaudit as fa
import a_package_that_is_not_installed  # noqa: F401


@fa.selector
def allocate(scores, k, rng):
    return rng.choice(len(scores), size=k, replace=False)
