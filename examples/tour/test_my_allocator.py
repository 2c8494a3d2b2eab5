"""The README tour's fairness tests (run from this folder: `pytest test_my_allocator.py`)."""
from my_allocator import allocate as my_allocator

from fairaudit.testing import assert_fair, parametrize_with_checks


def test_my_lottery():
    assert_fair(my_allocator, checks=["selection_rates"], data="people.csv")   # message: verdict, estimate, interval, counterexample


@parametrize_with_checks([my_allocator], checks=["broome", "selection_rates"], data="people.csv")
def test_fairness(allocator, check):                              # one test per check
    check(allocator)
