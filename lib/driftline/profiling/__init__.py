"""Column profiles shared by training, scoring and monitoring: reference bins (`bins`), the membership filter
of high-cardinality categories (`membership`), the one-pass profile on the JVM or Arrow fold (`profile`) and
stored reference profiles read back (`stored`)."""
