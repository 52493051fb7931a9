"""How the tests start Spark's JVMs: each lives a minute or two on tiny days, so the JIT
compiler's work, not the data, is most of their CPU time (the machine has 2 cores)."""

from __future__ import annotations

from typing import Final

# C1 only (no C2 recompiles of hot methods) and the serial collector (no parallel GC threads):
# the Spark session's test files took 157 CPU s instead of 231 (spark_engine, join rounds and
# engine parity), the benchmark harness's Connect test 79 instead of 126 (same results).
# Production keeps the JVM's defaults: long runs on day-sized batches gain from C2.
SHORT_LIVED_JVM_OPTIONS: Final = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# For JVMs a test starts through a script (Spark Connect server, standalone master and worker,
# a `dagster` CLI run's driver and executors): every JVM reads this variable.
JVM_OPTIONS_VARIABLE: Final = "JAVA_TOOL_OPTIONS"
