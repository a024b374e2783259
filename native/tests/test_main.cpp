// Entry point of the native unit tests: every tests/test_*.cpp registers its cases with
// TEST_CASE; an optional argument runs only the cases whose name contains it.
#include "tests/check.h"

int main(int argc, char** argv) { return fusediff::test::run_all(argc, argv); }
