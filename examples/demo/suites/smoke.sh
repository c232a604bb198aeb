#!/bin/sh
# Demo test suite "smoke": stands in for a real suite so `test run smoke` works out of the box.
echo "running smoke suite against ${LAZYOPS_ENV:-prod}"
for t in health login checkout; do
  echo "ok - smoke/$t"
done
echo "3 passed, 0 failed"
