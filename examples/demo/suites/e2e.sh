#!/bin/sh
# Demo test suite "e2e": stands in for a real suite so `test run e2e` works out of the box.
echo "running e2e suite against ${LAZYOPS_ENV:-prod}"
for t in health login checkout; do
  echo "ok - e2e/$t"
done
echo "3 passed, 0 failed"
